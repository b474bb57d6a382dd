"""The Maps view: basin maps and phase diagrams (:mod:`engine.maps`) in the window.

``plot`` draws a map (used by the window and, unchanged, by ``python main.py map --png``);
``view`` is the dock that computes maps in a worker thread and sends clicks to the race.
"""
