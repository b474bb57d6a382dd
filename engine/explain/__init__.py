"""Explanations: the expression language that computes and renders, step explanations, and
Markdown/LaTeX derivations.

============================  ===========================================================
``format.py``                 numbers and symbols as Unicode text and LaTeX
``tree.py``                   the expression trees (render in every mode, evaluate)
``context.py``                :class:`StepContext`, what an optimizer's explainer writes with
``steps.py``                  :func:`explain_step`, :func:`explain_state` (the inspector's data)
``derivation.py``             whole runs written out as Markdown or LaTeX
============================  ===========================================================

The optimizers' explainers live with their rules (``engine/optimizers/*.py``) and use
``format``, ``tree`` and ``context``, which import no optimizer. This package's names are
loaded on first use, so a rule module can import ``engine.explain.tree`` while the
registry is still being filled.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "format": ("DIGITS", "GREEK_LATEX", "MINUS", "SUBSCRIPTS", "fmt", "fmt_value", "tex_num",
               "tex_row", "tex_symbol", "tex_value"),
    "tree": ("Expr", "Const", "Sym", "Fn", "Call"),
    "context": ("Line", "StepContext"),
    "steps": ("EXPLAINERS", "Quantity", "StateExplanation", "StateVar", "StepExplanation",
              "explain_state", "explain_step", "explain_steps"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.explain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.explain.{module}"), name)
    globals()[name] = value
    return value
