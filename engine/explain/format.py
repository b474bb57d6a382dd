"""Numbers and symbols as text: Unicode for the window, LaTeX for derivations.

Vectors are 2-vectors, written like the course writes them: (−4.6, 1.2) in text, column
vectors in LaTeX (narrow enough for a printed page). Numbers are shown by :func:`fmt` with
up to 8 significant digits; the full-precision values stay in the dataclasses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DIGITS = 8
MINUS = "\u2212"  # the typographic minus used in Unicode text

Value = Any  # float | int | bool | None | tuple[float, ...] | tuple[tuple[float, ...], ...]


# ============================================================================ number formatting


def fmt(x: Any, digits: int = DIGITS, minus: str = "-") -> str:
    """A number as text: up to ``digits`` significant digits, trailing zeros trimmed.

    ``fmt(-4.0513214453)`` → ``"-4.0513214"``, ``fmt(1e-6)`` → ``"1e-6"``, ``fmt(30)`` →
    ``"30"``, ``fmt(True)`` → ``"true"``. ``minus`` replaces the sign (``"−"`` for Unicode
    text); the default ASCII sign keeps copied numbers pasteable into Python.
    """
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        text = str(int(x))
    else:
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            text = "inf" if x > 0 else "-inf"
        elif x == 0:
            text = "0"
        else:
            text = f"{x:.{digits}g}"
            if "e" in text:
                mant, exp = text.split("e")
                text = f"{mant}e{int(exp)}"
    return text.replace("-", minus) if minus != "-" else text


def fmt_value(v: Any, digits: int = DIGITS, minus: str = "-") -> str:
    """A scalar, 2-vector ``(a, b)`` or matrix ``((a, b), (c, d))`` as text."""
    if isinstance(v, str):
        return v
    if v is None or isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
        return fmt(v, digits, minus)
    arr = np.asarray(v)
    if arr.ndim == 0:
        return fmt(arr.item(), digits, minus)
    return "(" + ", ".join(fmt_value(x, digits, minus) for x in arr) + ")"


def tex_num(x: Any, digits: int = DIGITS) -> str:
    """A number in LaTeX math: ``1e-6`` becomes ``10^{-6}``, ``2.5e-7`` ``2.5\\times10^{-7}``."""
    text = fmt(x, digits)
    if "e" in text and text not in ("inf", "-inf"):
        mant, exp = text.split("e")
        sign = "-" if mant.startswith("-") else ""
        mant = mant.lstrip("-")
        power = f"10^{{{exp}}}"
        return f"{sign}{power}" if mant == "1" else f"{sign}{mant}\\times {power}"
    if text == "inf":
        return r"\infty"
    if text == "-inf":
        return r"-\infty"
    if text == "nan":
        return r"\mathrm{NaN}"
    if text == "—":
        return r"\text{---}"
    return text


def tex_value(v: Any, digits: int = DIGITS) -> str:
    """A scalar, column vector or matrix in LaTeX (``pmatrix``, from amsmath)."""
    if v is None or isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
        if isinstance(v, (bool, np.bool_)):
            return r"\text{true}" if v else r"\text{false}"
        return tex_num(v, digits)
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return tex_num(arr.item(), digits)
    if arr.ndim == 1:
        return r"\begin{pmatrix}" + r" \\ ".join(tex_num(x, digits) for x in arr) + r"\end{pmatrix}"
    rows = [" & ".join(tex_num(x, digits) for x in row) for row in arr]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


def tex_row(v: Any, digits: int = DIGITS) -> str:
    """A vector as a LaTeX row ``(a,\\ b)`` (for function arguments such as ∇f(−5, −2))."""
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return tex_num(arr.item(), digits)
    return "(" + r",\ ".join(tex_num(x, digits) for x in arr) + ")"


def _freeze(v: Any) -> Value:
    """Arrays become (nested) tuples of Python floats so the dataclasses stay immutable."""
    if v is None or type(v) in (bool, int, float, str):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    arr = np.asarray(v)
    if arr.ndim == 0:
        return _freeze(arr.item())
    return tuple(_freeze(x) for x in arr)


# ============================================================================ symbols

GREEK_LATEX = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu",
    "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma", "τ": r"\tau", "φ": r"\varphi",
    "ψ": r"\psi", "ω": r"\omega", "Δ": r"\Delta", "Λ": r"\Lambda", "Π": r"\Pi",
    "Σ": r"\Sigma", "∇": r"\nabla",
}
SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₜₐᵢ₊₋", "0123456789tai+-", strict=True))
_TO_SUB = str.maketrans("0123456789+-", "₀₁₂₃₄₅₆₇₈₉₊₋")
_TO_SUP = {**dict(zip("0123456789+-t", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ᵗ", strict=True)), MINUS: "⁻"}


def tex_symbol(symbol: str) -> str:
    """LaTeX for a Unicode symbol as the registry writes it: ``β₁`` → ``\\beta_{1}``,
    ``η_a`` → ``\\eta_{a}``, ``s₀`` → ``s_{0}``; a plain name becomes ``\\mathrm{name}``."""
    if not symbol:
        return ""
    base, sub = symbol, ""
    if "_" in symbol:
        base, sub = symbol.split("_", 1)
    else:
        i = len(symbol)
        while i > 0 and symbol[i - 1] in SUBSCRIPTS:
            i -= 1
        base, sub = symbol[:i], "".join(SUBSCRIPTS[c] for c in symbol[i:])
    if len(base) == 1:
        out = GREEK_LATEX.get(base, base)
    else:
        out = r"\mathrm{" + base.replace("_", r"\_") + "}"
    if sub:
        out += "_{" + sub.replace("_", r"\_") + "}"
    return out


def _sub(n: int) -> str:
    return str(n).translate(_TO_SUB)


def _sup(text: str) -> str | None:
    if all(c in _TO_SUP for c in text):
        return "".join(_TO_SUP[c] for c in text)
    return None


# ============================================================================ expression trees
