"""optgui's Qt layer: the main window, panels, plots and the worker threads that drive
:mod:`engine`. Importing this package imports no Qt; the modules that need Qt import it."""

__version__ = "0.1.0"
