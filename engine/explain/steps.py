"""Step-by-step explanations of recorded optimizer steps, for the inspector and derivations.

The course exercise asks students to write out each algorithm for two iterations by hand.
:func:`explain_step` does it for any recorded step of any registered optimizer: every line of
the update is built once as a small expression tree whose leaves carry the *recorded* numbers
(the point before the step, the gradient fed to it, the states before and after). The same
tree renders the rule in symbols (Unicode and LaTeX), the rule with this step's numbers
substituted, and evaluates itself, so a test can recompute every line from its substituted
numbers and compare with what the trajectory recorded. Nothing is recomputed for display:
each line's result is the recorded value (the state after the step, the new point w_k).

Vectors are 2-vectors, written like the course writes them: (−4.6, 1.2) in text, column
vectors in LaTeX (narrow enough for a printed page). Numbers are shown by :func:`fmt` with
up to 8 significant digits; the full-precision values stay in the dataclasses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from engine.functions import Surface, get_surface
from engine.optimizers import OptimizerSpec, forward_direction
from engine.spec import RunSpec
from engine.trajectory import Trajectory

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

ADD, NEG, MUL, POW, ATOM = 1, 2, 3, 5, 9


class Mode(NamedTuple):
    """How to render: ``kind`` is "rule" (w ← w − η·g), "indexed" (w₁ = w₀ − η·g₁) or
    "subst" (numbers); ``tex`` selects LaTeX; ``k`` is the step number for indices."""

    kind: str
    tex: bool
    k: int = 0


def _paren(s: str, mode: Mode) -> str:
    return rf"\left({s}\right)" if mode.tex else f"({s})"


class Expr:
    """A node of an update rule: renders in every mode and evaluates numerically."""

    def eval(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, mode: Mode) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def prec(self, mode: Mode) -> int:
        return ATOM

    def wrap(self, mode: Mode, need: int) -> str:
        s = self.render(mode)
        return _paren(s, mode) if self.prec(mode) < need else s

    def terms(self) -> list[tuple[str, Expr]]:
        """The top-level sum as (sign, term) pairs, for breaking long lines."""
        return [("+", self)]

    # operator sugar keeps the rule definitions readable
    def __add__(self, o: Expr) -> Expr:
        return Add(self, _e(o))

    def __radd__(self, o: Any) -> Expr:
        return Add(_e(o), self)

    def __sub__(self, o: Expr) -> Expr:
        return Sub(self, _e(o))

    def __rsub__(self, o: Any) -> Expr:
        return Sub(_e(o), self)

    def __mul__(self, o: Expr) -> Expr:
        return Mul(self, _e(o))

    def __rmul__(self, o: Any) -> Expr:
        return Mul(_e(o), self)

    def __truediv__(self, o: Expr) -> Expr:
        return Div(self, _e(o))

    def __rtruediv__(self, o: Any) -> Expr:
        return Div(_e(o), self)

    def __pow__(self, o: Any) -> Expr:
        return Pow(self, _e(o))

    def __neg__(self) -> Expr:
        return Neg(self)


def _e(x: Any) -> Expr:
    return x if isinstance(x, Expr) else Const(x)


@dataclass(eq=False)
class Const(Expr):
    """A literal of the rule itself (the 1 in 1 − β, the identity I): same in every mode."""

    value: Any
    text: str = ""
    tex: str = ""

    def eval(self) -> Any:
        return np.asarray(self.value, dtype=float) if np.ndim(self.value) else float(self.value)

    def render(self, mode: Mode) -> str:
        if mode.tex:
            return self.tex or tex_num(self.value)
        return self.text or fmt(self.value, minus=MINUS)

    def prec(self, mode: Mode) -> int:
        return NEG if np.ndim(self.value) == 0 and float(self.value) < 0 else ATOM


@dataclass(eq=False)
class Sym(Expr):
    """A named quantity with its recorded value.

    ``when`` places it in time for indexed rules: ``-1`` is the value before the step
    (m₀ at step 1), ``0`` the value after it (m₁), ``None`` a constant (η, β₁, t).
    """

    name: str
    symbol: str
    latex: str
    value: Any
    when: int | None = None

    def eval(self) -> Any:
        if self.value is None:
            raise ValueError(f"{self.name} has no value")
        if isinstance(self.value, (bool, np.bool_)):
            return float(self.value)
        return np.asarray(self.value, dtype=float) if np.ndim(self.value) else float(self.value)

    def render(self, mode: Mode) -> str:
        if mode.kind == "subst":
            return tex_value(self.value) if mode.tex else fmt_value(self.value, minus=MINUS)
        latex = self.latex
        if mode.kind == "indexed" and self.when is not None:
            i = mode.k + self.when
            if not mode.tex:
                return f"{self.symbol}{_sub(i)}"
            # a symbol with its own subscript (v_{max}) takes the step index inside it
            m = re.fullmatch(r"(.*)_\{(.*)\}", latex)
            return f"{m.group(1)}_{{{m.group(2)},{i}}}" if m else f"{latex}_{{{i}}}"
        return latex if mode.tex else self.symbol

    def prec(self, mode: Mode) -> int:
        if mode.kind == "subst" and np.ndim(self.value) == 0 and self.value is not None:
            if not isinstance(self.value, (bool, np.bool_)) and float(self.value) < 0:
                return NEG
        return ATOM


@dataclass(eq=False)
class Add(Expr):
    a: Expr
    b: Expr

    def eval(self) -> Any:
        return self.a.eval() + self.b.eval()

    def render(self, mode: Mode) -> str:
        return f"{self.a.wrap(mode, ADD)} + {self.b.wrap(mode, MUL)}"

    def prec(self, mode: Mode) -> int:
        return ADD

    def terms(self) -> list[tuple[str, Expr]]:
        return self.a.terms() + [("+", self.b)]


@dataclass(eq=False)
class Sub(Expr):
    a: Expr
    b: Expr

    def eval(self) -> Any:
        return self.a.eval() - self.b.eval()

    def render(self, mode: Mode) -> str:
        op = " - " if mode.tex else f" {MINUS} "
        return f"{self.a.wrap(mode, ADD)}{op}{self.b.wrap(mode, MUL)}"

    def prec(self, mode: Mode) -> int:
        return ADD

    def terms(self) -> list[tuple[str, Expr]]:
        return self.a.terms() + [("-", self.b)]


@dataclass(eq=False)
class Neg(Expr):
    a: Expr

    def eval(self) -> Any:
        return -self.a.eval()

    def render(self, mode: Mode) -> str:
        return ("-" if mode.tex else MINUS) + self.a.wrap(mode, MUL)

    def prec(self, mode: Mode) -> int:
        return NEG


@dataclass(eq=False)
class Mul(Expr):
    """Product (element-wise for vectors, as the course's NumPy code computes it)."""

    a: Expr
    b: Expr

    def eval(self) -> Any:
        return self.a.eval() * self.b.eval()

    def render(self, mode: Mode) -> str:
        left, right = self.a.wrap(mode, MUL), self.b.wrap(mode, MUL)
        if not mode.tex:
            return f"{left}·{right}"
        return f"{left} \\cdot {right}" if mode.kind == "subst" else f"{left}\\,{right}"

    def prec(self, mode: Mode) -> int:
        return MUL


@dataclass(eq=False)
class Div(Expr):
    a: Expr
    b: Expr

    def eval(self) -> Any:
        return self.a.eval() / self.b.eval()

    def render(self, mode: Mode) -> str:
        if mode.tex:
            return rf"\frac{{{self.a.render(mode)}}}{{{self.b.render(mode)}}}"
        return f"{self.a.wrap(mode, MUL)} / {self.b.wrap(mode, POW)}"

    def prec(self, mode: Mode) -> int:
        return POW - 1 if mode.tex else MUL


@dataclass(eq=False)
class SafeRatio(Div):
    """a / b per coordinate, with ``fallback`` where b = 0 (AdaSmooth's 0/0 guard),
    clipped to at most ``cap`` (the ratio is ≤ 1 in exact arithmetic)."""

    fallback: float = 1.0
    cap: float = 1.0

    def eval(self) -> Any:
        a, b = self.a.eval(), self.b.eval()
        moved = b > 0
        return np.where(moved, np.minimum(a / np.where(moved, b, 1.0), self.cap), self.fallback)


@dataclass(eq=False)
class Pow(Expr):
    a: Expr
    b: Expr

    def eval(self) -> Any:
        return self.a.eval() ** self.b.eval()

    def render(self, mode: Mode) -> str:
        base = self.a.wrap(mode, ATOM)
        exp = self.b.render(mode)
        if mode.tex:
            return f"{base}^{{{exp}}}"
        sup = _sup(exp)
        return f"{base}{sup}" if sup is not None else f"{base}^({exp})"

    def prec(self, mode: Mode) -> int:
        return POW


@dataclass(eq=False)
class Fn(Expr):
    """A named function of its arguments: √x, |x|, ‖x‖₂, max(a, b), ⟨a, b⟩, A⁻¹·b, Σ."""

    kind: str
    args: tuple[Expr, ...]

    def eval(self) -> Any:
        vals = [a.eval() for a in self.args]
        if self.kind == "sqrt":
            return np.sqrt(vals[0])
        if self.kind == "abs":
            return np.abs(vals[0])
        if self.kind == "norm":
            return float(np.linalg.norm(vals[0]))
        if self.kind == "max":
            return np.maximum(vals[0], vals[1])
        if self.kind == "dot":
            return float(np.dot(vals[0], vals[1]))
        if self.kind == "solve":
            return np.linalg.solve(vals[0], vals[1])
        if self.kind == "sum":
            return sum(vals[1:], vals[0])
        raise ValueError(self.kind)

    def render(self, mode: Mode) -> str:
        a = self.args
        t = mode.tex
        if self.kind == "sqrt":
            inner = a[0].render(mode)
            return rf"\sqrt{{{inner}}}" if t else f"√{a[0].wrap(mode, ATOM)}"
        if self.kind == "abs":
            inner = a[0].render(mode)
            return rf"\left|{inner}\right|" if t else f"|{inner}|"
        if self.kind == "norm":
            inner = a[0].render(mode)
            return rf"\left\lVert {inner}\right\rVert_2" if t else f"‖{inner}‖₂"
        if self.kind == "max":
            inner = ", ".join(x.render(mode) for x in a)
            return rf"\max\left({inner}\right)" if t else f"max({inner})"
        if self.kind == "dot":
            inner = ", ".join(x.render(mode) for x in a)
            return rf"\left\langle {inner}\right\rangle" if t else f"⟨{inner}⟩"
        if self.kind == "solve":
            m, v = a[0].wrap(mode, ATOM), a[1].wrap(mode, MUL)
            return f"{m}^{{-1}} {v}" if t else f"{m}⁻¹·{v}"
        if self.kind == "sum":
            return " + ".join(x.wrap(mode, ADD) for x in a)
        raise ValueError(self.kind)

    def prec(self, mode: Mode) -> int:
        if self.kind == "sum" and len(self.args) > 1:
            return ADD
        if self.kind in ("sqrt", "solve"):
            return POW
        return ATOM


@dataclass(eq=False)
class Call(Expr):
    """An evaluation of the surface, e.g. ∇f(w₀): its value is the recorded one; ``fn``
    recomputes it from the argument (``None`` when it cannot be: noise, unknown surface)."""

    symbol: str
    latex: str
    arg: Expr
    value: Any
    fn: Callable[[Any], Any] | None = None

    def eval(self) -> Any:
        if self.fn is not None:
            return np.asarray(self.fn(self.arg.eval()), dtype=float)
        return np.asarray(self.value, dtype=float)

    def render(self, mode: Mode) -> str:
        if mode.kind == "subst" and isinstance(self.arg, Sym) and np.ndim(self.arg.value) == 1:
            arg = tex_row(self.arg.value) if mode.tex else fmt_value(self.arg.value, minus=MINUS)
            return f"{self.latex}{arg}" if mode.tex else f"{self.symbol}{arg}"
        inner = self.arg.render(mode)
        return f"{self.latex}({inner})" if mode.tex else f"{self.symbol}({inner})"


def sqrt(x: Expr) -> Expr:
    return Fn("sqrt", (x,))


def absval(x: Expr) -> Expr:
    return Fn("abs", (x,))


# ============================================================================ dataclasses


@dataclass(frozen=True)
class Quantity:
    """A named value: a hyperparameter, or a state variable at one step."""

    name: str  # the field or hyperparameter name, e.g. "m_hat", "beta1", "base.m"
    symbol: str  # Unicode, e.g. "m̂"
    latex: str  # e.g. r"\hat{m}"
    value: Value

    @property
    def text(self) -> str:
        return fmt_value(self.value, minus=MINUS)


@dataclass(frozen=True)
class StateVar:
    """One state variable before and after a step."""

    name: str
    symbol: str
    latex: str
    before: Value
    after: Value


@dataclass(frozen=True)
class Line:
    """One statement of the update with this step's numbers.

    ``lhs ← rule`` in symbols, then ``lhs_indexed = symbolic`` with step indices
    (``m₁ = β₁·m₀ + (1 − β₁)·g₁``), then ``= substituted`` (the numbers, full precision in
    the leaves) and ``= result`` (the recorded value). ``exact`` is False where the value is
    sampled (random directions, noisy gradients) and cannot be recomputed from the numbers.
    """

    target: str
    lhs: str
    lhs_latex: str
    rule: str
    rule_latex: str
    symbolic: str
    symbolic_latex: str
    substituted: str
    substituted_latex: str
    substituted_terms_latex: tuple[str, ...]  # the substituted sum split into its terms
    symbolic_terms_latex: tuple[str, ...]
    result: Value
    result_text: str
    result_latex: str
    exact: bool = True
    note: str = ""
    expr: Expr | None = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The whole line as one copyable string."""
        parts = [self.symbolic]
        if self.substituted != self.symbolic:
            parts.append(self.substituted)
        if self.result_text != parts[-1]:
            parts.append(self.result_text)
        out = f"{self.lhs} = " + " = ".join(parts)
        return f"{out}    ({self.note})" if self.note else out

    def recompute(self) -> Any:
        """Evaluate the line again from its substituted numbers (tests compare to result)."""
        if self.expr is None:
            return self.result
        return self.expr.eval()


@dataclass(frozen=True)
class StateExplanation:
    """The situation at step k (k = 0: the start): w_k, f(w_k), ∇f(w_k) and the state."""

    k: int
    spec: str
    optimizer: str
    title: str
    point: Value
    loss: float
    gradient: Value  # the true gradient ∇f(w_k)
    state: tuple[Quantity, ...]
    hypers: tuple[Quantity, ...]
    stochastic: bool
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [
            f"{self.spec} — step {self.k}",
            f"w{_sub(self.k)} = {fmt_value(self.point, minus=MINUS)}",
            f"f(w{_sub(self.k)}) = {fmt(self.loss, minus=MINUS)}",
            f"∇f(w{_sub(self.k)}) = {fmt_value(self.gradient, minus=MINUS)}",
        ]
        lines += [f"{q.symbol} = {q.text}    ({q.name})" for q in self.state]
        lines += [f"{q.symbol or q.name} = {q.text}    ({q.name})" for q in self.hypers]
        lines += list(self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class StepExplanation:
    """Step k ≥ 1 written out: from w_{k−1} with the gradient used to the new point w_k."""

    k: int
    spec: str
    optimizer: str
    title: str
    rule: str  # the registry's rule text (all branches)
    point_before: Value  # w_{k−1}
    loss_before: float  # f(w_{k−1})
    gradient: Value  # the gradient fed to step k (used_grads[k]; noisy if the run is)
    true_gradient: Value  # ∇f(w_{k−1}) without noise or mini-batching
    stochastic: bool
    hypers: tuple[Quantity, ...]
    states: tuple[StateVar, ...]
    lines: tuple[Line, ...]
    point_after: Value  # w_k
    loss_after: float  # f(w_k)
    update: Value  # w_k − w_{k−1}
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        """A plain-text rendering, e.g. for a copy button."""
        out = [
            f"{self.spec} — step {self.k}",
            f"w{_sub(self.k - 1)} = {fmt_value(self.point_before, minus=MINUS)}, "
            f"f(w{_sub(self.k - 1)}) = {fmt(self.loss_before, minus=MINUS)}",
        ]
        out += [f"{q.symbol or q.name} = {q.text}    ({q.name})" for q in self.hypers]
        out += [line.text for line in self.lines]
        out.append(
            f"f(w{_sub(self.k)}) = {fmt(self.loss_after, minus=MINUS)}"
        )
        out += list(self.notes)
        return "\n".join(out)


# ============================================================================ state symbols

# Unicode and LaTeX for state fields; LaTeX forms take a subscript cleanly (no subscript of
# their own), so indexed rules can append _{k}.
STATE_SYMBOLS: dict[str, tuple[str, str]] = {
    "t": ("t", "t"),
    "v": ("v", "v"),
    "buf": ("b", "b"),
    "s": ("s", "s"),
    "m": ("m", "m"),
    "m_hat": ("m̂", r"\hat{m}"),
    "v_hat": ("v̂", r"\hat{v}"),
    "s_hat": ("ŝ", r"\hat{s}"),
    "v_max": ("v_max", r"v_{\max}"),
    "lr_t": ("ηₜ", r"\eta_t"),
    "u": ("u", "u"),
    "delta": ("Δ", r"\Delta"),
    "mu": ("μₜ", r"\mu_t"),
    "mu_product": ("Πₜ", r"\Pi_t"),
    "window": ("Δx[]", r"\Delta x_{\mathrm{recent}}"),
    "e": ("e", "e"),
    "c": ("c", "c"),
    "eg2": ("E[g²]", r"E[g^2]"),
    "hessian": ("H", "H"),
    "eigvals": ("Λ", r"\Lambda"),
    "direction": ("d", "d"),
    "eps": ("ε̂", r"\hat{\epsilon}"),
    "perturbed_point": ("w̃", r"\tilde{w}"),
    "g_sam": ("g_SAM", r"g_{\mathrm{SAM}}"),
    "scale": ("T", "T"),
    "d": ("d", "d"),
    "g_est": ("g̃", r"\tilde{g}"),
}


def _state_symbol(name: str) -> tuple[str, str]:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in STATE_SYMBOLS:
        return STATE_SYMBOLS[leaf]
    return leaf, r"\mathrm{" + leaf.replace("_", r"\_") + "}"


def _flatten_state(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, value) pairs of a NamedTuple state; a nested state (SAM's base) as base.x."""
    out: list[tuple[str, Any]] = []
    if state is None or not hasattr(state, "_fields"):
        return out
    for name in state._fields:
        value = getattr(state, name)
        if hasattr(value, "_fields"):
            out += _flatten_state(value, f"{prefix}{'base' if name == 'base_state' else name}.")
        else:
            out.append((prefix + name, value))
    return out


# ============================================================================ the step context


@dataclass
class _Ctx:
    """What an explainer needs for one step; it appends lines to ``lines``."""

    k: int
    run: RunSpec
    before: Any
    after: Any
    w: Sym  # w_{k−1}
    w_next: Any  # recorded w_k
    g: Expr  # the gradient the rule uses (g, or g_SAM inside SAM)
    surface: Surface | None
    traj: Trajectory
    lines: list[Line]
    notes: list[str]

    @property
    def values(self) -> dict[str, Any]:
        return self.run.resolved()

    @property
    def spec(self) -> OptimizerSpec:
        return self.run.spec

    def h(self, name: str) -> Sym:
        """A hyperparameter as a leaf."""
        hyper = self.spec.hyper(name)
        symbol = hyper.symbol or name
        return Sym(name, symbol, tex_symbol(symbol), self.values[name])

    def prev(self, name: str) -> Sym:
        """A state field before the step (index k−1)."""
        sym, tex = _state_symbol(name)
        return Sym(name, sym, tex, _freeze(getattr(self.before, name)), when=-1)

    def new(self, name: str) -> Sym:
        """A state field after the step (index k), holding its recorded value."""
        sym, tex = _state_symbol(name)
        return Sym(name, sym, tex, _freeze(getattr(self.after, name)), when=0)

    def const(self, name: str, symbol: str, latex: str, value: Any) -> Sym:
        """A step-level quantity without a time index (t, η_t, μ_t …)."""
        return Sym(name, symbol, latex, _freeze(value))

    def t_line(self) -> Sym:
        """t ← t + 1, for rules with bias correction or schedules."""
        t = Sym("t", "t", "t", int(self.after.t))
        before = Sym("t", "t", "t", int(self.before.t))
        self.emit(t, before + Const(1), indexed=False)
        return t

    def emit(
        self,
        target: Sym,
        expr: Expr,
        *,
        result: Any = None,
        exact: bool = True,
        note: str = "",
        indexed: bool = True,
    ) -> Sym:
        """Add the line ``target = expr``; the result is the target's recorded value,
        or (for an intermediate with no recorded value) the expression's value."""
        if result is None:
            result = target.value if target.value is not None else _freeze(expr.eval())
        target = Sym(target.name, target.symbol, target.latex, _freeze(result), target.when)
        rule_t = Mode("rule", False, self.k)
        rule_x = Mode("rule", True, self.k)
        ind_t = Mode("indexed" if indexed else "rule", False, self.k)
        ind_x = Mode("indexed" if indexed else "rule", True, self.k)
        sub_t = Mode("subst", False, self.k)
        sub_x = Mode("subst", True, self.k)
        def terms(mode: Mode) -> tuple[str, ...]:
            out = []
            for i, (sign, term) in enumerate(expr.terms()):
                body = term.wrap(mode, MUL if i else ADD)
                out.append(body if i == 0 else f"{sign} {body}")
            return tuple(out)

        self.lines.append(Line(
            target=target.name,
            lhs=target.render(ind_t),
            lhs_latex=target.render(ind_x),
            rule=f"{target.render(rule_t)} ← {expr.render(rule_t)}",
            rule_latex=rf"{target.render(rule_x)} \leftarrow {expr.render(rule_x)}",
            symbolic=expr.render(ind_t),
            symbolic_latex=expr.render(ind_x),
            substituted=expr.render(sub_t),
            substituted_latex=expr.render(sub_x),
            substituted_terms_latex=terms(sub_x),
            symbolic_terms_latex=terms(ind_x),
            result=_freeze(result),
            result_text=fmt_value(result, minus=MINUS),
            result_latex=tex_value(result),
            exact=exact,
            note=note,
            expr=expr,
        ))
        return target

    def step_to(self, expr: Expr, note: str = "") -> None:
        """The final line: w_k = expr, with the recorded new point."""
        w_new = Sym("w", "w", "w", _freeze(self.w_next), when=0)
        self.emit(w_new, expr, note=note)


# ============================================================================ explainers


def _gd(c: _Ctx) -> None:
    c.step_to(c.w - c.h("lr") * c.g)


def _momentum(c: _Ctx) -> None:
    beta = c.h("beta")
    v = c.emit(c.new("v"), beta * c.prev("v") + (1 - beta) * c.g)
    c.step_to(c.w - c.h("lr") * v)


def _sgd(c: _Ctx, nesterov: bool | None = None) -> None:
    vals = c.values
    mu_value = vals["momentum"]
    nesterov = vals.get("nesterov", False) if nesterov is None else nesterov
    lr = c.h("lr")
    if mu_value == 0:
        c.step_to(c.w - lr * c.g)
        return
    mu = c.h("momentum")
    if c.before.t == 0:
        b = c.emit(c.new("buf"), c.g, note="first step: the buffer starts as the gradient")
    elif vals["dampening"] == 0:
        b = c.emit(c.new("buf"), mu * c.prev("buf") + c.g)
    else:
        b = c.emit(c.new("buf"), mu * c.prev("buf") + (1 - c.h("dampening")) * c.g)
    if nesterov:
        d = c.emit(Sym("d", "d", "d", None, when=0), c.g + mu * b, note="Nesterov look-ahead")
        c.step_to(c.w - lr * d)
    else:
        c.step_to(c.w - lr * b)


def _rmsprop(c: _Ctx) -> None:
    alpha, eps = c.h("alpha"), c.h("eps")
    s = c.emit(c.new("s"), alpha * c.prev("s") + (1 - alpha) * c.g ** 2)
    if c.values["eps_in_sqrt"]:
        c.step_to(c.w - c.h("lr") * c.g / sqrt(s + eps), note="course form: ε inside the root")
    else:
        c.step_to(c.w - c.h("lr") * c.g / (sqrt(s) + eps), note="torch form: ε outside the root")


def _adam(c: _Ctx) -> None:
    b1, b2, eps = c.h("beta1"), c.h("beta2"), c.h("eps")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    v = c.emit(c.new("v"), b2 * c.prev("v") + (1 - b2) * c.g ** 2)
    m_hat = c.emit(c.new("m_hat"), m / (1 - b1 ** t))
    if c.values["amsgrad"]:
        vmax = c.emit(c.new("v_max"), Fn("max", (c.prev("v_max"), v)), note="AMSGrad")
        v_hat = c.emit(c.new("v_hat"), vmax / (1 - b2 ** t))
    else:
        v_hat = c.emit(c.new("v_hat"), v / (1 - b2 ** t))
    c.step_to(c.w - c.h("lr") * m_hat / (sqrt(v_hat) + eps))


def _adagrad(c: _Ctx) -> None:
    t = c.t_line()
    s = c.emit(c.new("s"), c.prev("s") + c.g ** 2)
    lr_t = c.emit(c.const("lr_t", "ηₜ", r"\eta_t", c.after.lr_t),
                  c.h("lr") / (1 + (t - 1) * c.h("lr_decay")))
    c.step_to(c.w - lr_t * c.g / (sqrt(s) + c.h("eps")))


def _adadelta(c: _Ctx) -> None:
    rho, eps = c.h("rho"), c.h("eps")
    v = c.emit(c.new("v"), rho * c.prev("v") + (1 - rho) * c.g ** 2)
    delta = c.emit(c.new("delta"), sqrt(c.prev("u") + eps) / sqrt(v + eps) * c.g)
    c.emit(c.new("u"), rho * c.prev("u") + (1 - rho) * delta ** 2)
    c.step_to(c.w - c.h("lr") * delta)


def _adamax(c: _Ctx) -> None:
    b1, b2 = c.h("beta1"), c.h("beta2")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    u = c.emit(c.new("u"), Fn("max", (b2 * c.prev("u"), absval(c.g) + c.h("eps"))))
    c.step_to(c.w - c.h("lr") / (1 - b1 ** t) * (m / u))


def _nadam(c: _Ctx) -> None:
    b1, b2, eps, psi = c.h("beta1"), c.h("beta2"), c.h("eps"), c.h("momentum_decay")
    t = c.t_line()
    t1 = t + Const(1)
    half = Const(0.5, "½", r"\tfrac{1}{2}")
    mu = c.emit(c.const("mu", "μₜ", r"\mu_t", c.after.mu),
                b1 * (1 - half * Const(0.96) ** (t * psi)))
    mu_next = c.emit(c.const("mu_next", "μₜ₊₁", r"\mu_{t+1}", None),
                     b1 * (1 - half * Const(0.96) ** (t1 * psi)))
    prod_prev = c.const("mu_product", "Πₜ₋₁", r"\Pi_{t-1}", c.before.mu_product)
    prod = c.emit(c.const("mu_product", "Πₜ", r"\Pi_t", c.after.mu_product), prod_prev * mu,
                  note="Πₜ = μ₁·…·μₜ")
    prod_next = c.emit(c.const("mu_product_next", "Πₜ₊₁", r"\Pi_{t+1}", None), prod * mu_next)
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    v = c.emit(c.new("v"), b2 * c.prev("v") + (1 - b2) * c.g ** 2)
    v_hat = c.emit(Sym("v_hat", "v̂", r"\hat{v}", None, when=0), v / (1 - b2 ** t))
    lr = c.h("lr")
    c.step_to(
        c.w
        - lr * (1 - mu) / (1 - prod) * (c.g / (sqrt(v_hat) + eps))
        - lr * mu_next / (1 - prod_next) * (m / (sqrt(v_hat) + eps))
    )


def _adabelief(c: _Ctx) -> None:
    b1, b2, eps = c.h("beta1"), c.h("beta2"), c.h("eps")
    t = c.t_line()
    m = c.emit(c.new("m"), b1 * c.prev("m") + (1 - b1) * c.g)
    s = c.emit(c.new("s"), b2 * c.prev("s") + (1 - b2) * (c.g - m) ** 2 + eps)
    m_hat = c.emit(c.new("m_hat"), m / (1 - b1 ** t))
    s_hat = c.emit(c.new("s_hat"), s / (1 - b2 ** t))
    c.step_to(c.w - c.h("lr") * m_hat / (sqrt(s_hat) + eps))


def _adasmooth(c: _Ctx) -> None:
    rho1, rho2 = c.h("rho1"), c.h("rho2")
    window = np.asarray(c.before.window, dtype=float)
    n = len(window)
    first = c.k - n  # step number of the oldest displacement in the window
    dx = [Sym(f"dx{first + i}", f"Δx{_sub(first + i)}", rf"\Delta x_{{{first + i}}}",
              _freeze(row)) for i, row in enumerate(window)]
    if n == 0:
        e = c.emit(c.new("e"), Const(np.ones(2), "(1, 1)", r"\begin{pmatrix}1 \\ 1\end{pmatrix}"),
                   note="nothing has moved yet: 0/0 counts as e = 1 (a straight path)")
    else:
        net = c.emit(Sym("net", "ΣΔx", r"\Sigma\Delta x", None), Fn("sum", tuple(dx)),
                     indexed=False, note=f"the last {n} displacement(s)")
        path = c.emit(Sym("path", "Σ|Δx|", r"\Sigma\left|\Delta x\right|", None),
                      Fn("sum", tuple(absval(x) for x in dx)), indexed=False)
        unmoved = not np.all(np.asarray(path.value) > 0)
        e = c.emit(c.new("e"), SafeRatio(absval(net), path),
                   note="0/0 counts as e = 1" if unmoved else "effective ratio, in [0, 1]")
    cc = c.emit(c.new("c"), (rho2 - rho1) * e + (1 - rho2))
    eg2 = c.emit(c.new("eg2"), cc ** 2 * c.g ** 2 + (1 - cc ** 2) * c.prev("eg2"))
    c.step_to(c.w - c.h("lr") * c.g / sqrt(eg2 + c.h("eps")))


def _newton(c: _Ctx) -> None:
    surface = c.surface
    hess = Call("∇²f", r"\nabla^2 f", c.w, _freeze(c.after.hessian),
                surface.hessian if surface is not None else None)
    h = c.emit(c.new("hessian"), hess, note="the Hessian at the point")
    lam = c.emit(c.new("eigvals"), Call("eig", r"\operatorname{eig}", h,
                                        _freeze(c.after.eigvals), np.linalg.eigvalsh),
                 note="eigenvalues of H")
    damping = c.h("damping")
    eye = Const(np.eye(2), "I", "I")
    if np.all(np.asarray(lam.value) > 0):
        d = c.emit(c.new("direction"), Fn("solve", (h + damping * eye, c.g)),
                   note="H is positive definite, so |H| = H")
    else:
        abs_h = c.emit(
            Sym("abs_hessian", "|H|", r"\left|H\right|", None),
            Call("Q·|Λ|·Qᵀ", r"Q\left|\Lambda\right|Q^{\top}", h, None, _abs_matrix),
            indexed=False, note="negative curvature flipped (saddle-free Newton)",
        )
        d = c.emit(c.new("direction"), Fn("solve", (abs_h + damping * eye, c.g)))
    c.step_to(c.w - c.h("lr") * d)


def _abs_matrix(h: Any) -> np.ndarray:
    lam, q = np.linalg.eigh(np.asarray(h, dtype=float))
    return q @ np.diag(np.abs(lam)) @ q.T


def _sharpness(c: _Ctx, adaptive: bool) -> None:
    """SAM/ASAM: the ascent step to w̃ = w + ε̂, the gradient there, then the base rule."""
    rho = c.h("rho")
    if adaptive:
        scale = c.emit(c.new("scale"), absval(c.w) + c.h("eta"), indexed=True)
        norm = float(np.linalg.norm(np.asarray(scale.value) * np.asarray(c.g.eval())))
        ascent = rho * scale ** 2 * c.g / Fn("norm", (scale * c.g,))
    else:
        norm = float(np.linalg.norm(np.asarray(c.g.eval())))
        ascent = rho * c.g / Fn("norm", (c.g,))
    if norm > 0:
        eps = c.emit(c.new("eps"), ascent, note="ascent to the worst point within radius ρ")
    else:
        eps = c.emit(c.new("eps"), Const(np.zeros(2), "(0, 0)", tex_value((0.0, 0.0))),
                     note="zero gradient: no ascent")
    point = c.emit(c.new("perturbed_point"), c.w + eps)
    fn = _grad_fn(c)
    exact = c.values.get("noise", 0) == 0
    g_sam = c.emit(
        c.new("g_sam"),
        Call(_grad_symbol(c), _grad_latex(c), point, _freeze(c.after.g_sam),
             fn if exact else None),
        exact=exact and fn is not None,
        note="" if exact else "noisy: a fresh draw of the gradient noise",
    )
    base_run = c.values["base"]
    base = _Ctx(
        k=c.k, run=base_run, before=c.before.base_state, after=c.after.base_state,
        w=c.w, w_next=c.w_next, g=g_sam, surface=c.surface, traj=c.traj,
        lines=c.lines, notes=c.notes,
    )
    _explain_rule(base)


def _forward_gradient(c: _Ctx) -> None:
    seed = c.values["seed"]
    t = int(c.after.t)
    v = c.emit(c.new("v"), Call("randn", r"\operatorname{randn}",
                                Sym("t", "t", "t", t), _freeze(c.after.v),
                                lambda _t: forward_direction(seed, t, (2,))),
               note=f"v ~ N(0, I), drawn with (seed={seed}, t={t})")
    clean = _clean_grad(c)
    noisy = c.values.get("noise", 0) > 0
    grad = Call(_grad_symbol(c), _grad_latex(c), c.w, _freeze(clean), _grad_fn(c))
    d = c.emit(c.new("d"), Fn("dot", (grad, v)), exact=not noisy and clean is not None,
               note="one forward-mode JVP" + ("; plus gradient noise" if noisy else ""))
    g_est = c.emit(c.new("g_est"), d * v, note="unbiased estimate of ∇f")
    c.step_to(c.w - c.h("lr") * g_est)


EXPLAINERS: dict[str, Callable[[_Ctx], None]] = {
    "gd": _gd,
    "momentum": _momentum,
    "sgd": _sgd,
    "nesterov": lambda c: _sgd(c, nesterov=True),
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adagrad": _adagrad,
    "adadelta": _adadelta,
    "adamax": _adamax,
    "nadam": _nadam,
    "adabelief": _adabelief,
    "adasmooth": _adasmooth,
    "newton": _newton,
    "sam": lambda c: _sharpness(c, adaptive=False),
    "asam": lambda c: _sharpness(c, adaptive=True),
    "forward_gradient": _forward_gradient,
}

# Explainers that compute their own gradient (the one fed by the trajectory is unused).
_OWN_GRADIENT = {"forward_gradient"}


def _explain_rule(c: _Ctx) -> None:
    explainer = EXPLAINERS.get(c.run.name)
    if explainer is None:
        # A rule added to the registry without an explainer still gets a truthful step.
        upd = Sym("update", "Δw", r"\Delta w", _freeze(np.asarray(c.w_next) - c.w.eval()))
        c.notes.append(f"no detailed explanation for {c.run.name} yet; see its rule")
        c.step_to(c.w + upd)
        return
    explainer(c)


# ============================================================================ gradients


def _batch(c: _Ctx) -> np.ndarray | None:
    if c.values.get("batch", 0) and len(c.traj.batches) >= c.k:
        return np.asarray(c.traj.batches[c.k - 1])
    return None


def _grad_fn(c: _Ctx) -> Callable[[Any], Any] | None:
    """The noise-free gradient this step's oracle computes (mini-batch aware)."""
    surface = c.surface
    if surface is None:
        return None
    idx = _batch(c)
    if c.values.get("batch", 0):
        if idx is None or not hasattr(surface, "batch_grad"):
            return None
        return lambda p: surface.batch_grad(p, idx)
    return surface.grad


def _clean_grad(c: _Ctx) -> Any:
    fn = _grad_fn(c)
    if fn is not None:
        return np.asarray(fn(c.w.eval()), dtype=float)
    if not c.values.get("batch", 0):
        return c.traj.grads[c.k - 1]
    return None


def _grad_symbol(c: _Ctx) -> str:
    return "∇f_B" if c.values.get("batch", 0) else "∇f"


def _grad_latex(c: _Ctx) -> str:
    return r"\nabla f_B" if c.values.get("batch", 0) else r"\nabla f"


def _gradient_line(c: _Ctx, used: Any) -> Sym:
    """g_k = ∇f(w_{k−1}), or its mini-batch / noisy version, with the value fed to step k."""
    target = Sym("g", "g", "g", _freeze(used), when=0)
    noise = float(c.values.get("noise", 0) or 0)
    clean = _clean_grad(c)
    fn = _grad_fn(c)
    batch = c.values.get("batch", 0)
    note = f"mini-batch of {batch} sample(s)" if batch else ""
    if clean is None:
        return c.emit(target, Call(_grad_symbol(c), _grad_latex(c), c.w, _freeze(used)),
                      exact=False, note=note or "stochastic gradient")
    call = Call(_grad_symbol(c), _grad_latex(c), c.w, _freeze(clean), fn)
    if noise > 0:
        xi = Sym("xi", "ξ", r"\xi", _freeze((np.asarray(used) - clean) / noise), when=0)
        sigma = Sym("noise", "σ", r"\sigma", noise)
        note = ", ".join(filter(None, [note, "ξ ~ N(0, I): seeded Gaussian noise"]))
        return c.emit(target, call + sigma * xi, note=note)
    return c.emit(target, call, note=note)


# ============================================================================ public API


def _surface_for(traj: Trajectory, surface: Surface | None) -> Surface | None:
    if surface is not None:
        return surface
    try:
        return get_surface(traj.surface)
    except ValueError:
        return None


def _is_stochastic(run: RunSpec) -> bool:
    """Noisy, mini-batched or estimated gradients: exactly when there is a note to say so."""
    return bool(_stochastic_notes(run))


def _stochastic_notes(run: RunSpec) -> list[str]:
    values = run.resolved()
    notes = []
    if values.get("noise", 0):
        notes.append(
            f"The gradient is stochastic: Gaussian noise of σ = {fmt(values['noise'])} "
            f"(seed {values.get('seed', 0)}) is added to every gradient."
        )
    if values.get("batch", 0):
        notes.append(
            f"The gradient is stochastic: each step uses a mini-batch of {values['batch']} "
            f"sample(s), drawn with seed {values.get('seed', 0)}."
        )
    if run.name == "forward_gradient":
        notes.append(
            "The gradient is estimated: a random direction v and one directional derivative "
            "replace the true gradient, which is not used."
        )
    return notes


def _hyper_quantities(run: RunSpec, prefix: str = "") -> list[Quantity]:
    out: list[Quantity] = []
    values = run.resolved()
    for hyper in run.spec.all_hypers:
        value = values[hyper.name]
        if hyper.kind == "spec":
            out.append(Quantity(prefix + hyper.name, "", "", str(value)))
            out += _hyper_quantities(value, prefix + hyper.name + ".")
            continue
        if hyper.name in ("noise", "seed", "batch") and prefix:
            continue
        if hyper.name in ("seed", "batch", "noise") and not value and not (
            hyper.name == "seed" and run.name == "forward_gradient"
        ):
            continue  # unused shared options stay out of the way
        symbol = hyper.symbol
        out.append(Quantity(prefix + hyper.name, symbol, tex_symbol(symbol), _freeze(value)))
    return out


def _check_k(traj: Trajectory, k: int, lo: int) -> int:
    k = int(k)
    if not lo <= k <= traj.steps:
        raise IndexError(f"step {k} is outside the recorded steps {lo}…{traj.steps}")
    return k


def explain_state(traj: Trajectory, k: int = 0) -> StateExplanation:
    """The point w_k, f(w_k), ∇f(w_k) and the optimizer state after k steps (k = 0: start)."""
    k = _check_k(traj, k, 0)
    state = [
        Quantity(name, *_state_symbol(name), _freeze(value))
        for name, value in _flatten_state(traj.states[k])
    ]
    return StateExplanation(
        k=k,
        spec=str(traj.spec),
        optimizer=traj.spec.name,
        title=traj.spec.spec.title,
        point=_freeze(traj.points[k]),
        loss=float(traj.losses[k]),
        gradient=_freeze(traj.grads[k]),
        state=tuple(state),
        hypers=tuple(_hyper_quantities(traj.spec)),
        stochastic=_is_stochastic(traj.spec),
        notes=tuple(_stochastic_notes(traj.spec)),
    )


def explain_step(traj: Trajectory, k: int, surface: Surface | None = None) -> StepExplanation:
    """Step k ≥ 1 of ``traj`` written out line by line, ending in the new point w_k.

    ``surface`` is the surface the run was made on; by default it is looked up by name
    (a surface that cannot be found only means evaluations such as ∇f(w) are shown with
    their recorded values instead of being recomputable).
    """
    k = _check_k(traj, k, 1)
    surf = _surface_for(traj, surface)
    w = Sym("w", "w", "w", _freeze(traj.points[k - 1]), when=-1)
    lines: list[Line] = []
    notes = _stochastic_notes(traj.spec)
    ctx = _Ctx(
        k=k, run=traj.spec, before=traj.states[k - 1], after=traj.states[k], w=w,
        w_next=traj.points[k], g=w, surface=surf, traj=traj, lines=lines, notes=notes,
    )
    if traj.spec.name not in _OWN_GRADIENT:
        ctx.g = _gradient_line(ctx, traj.used_grads[k])
    _explain_rule(ctx)

    before = dict(_flatten_state(traj.states[k - 1]))
    states = [
        StateVar(name, *_state_symbol(name), _freeze(before.get(name)), _freeze(value))
        for name, value in _flatten_state(traj.states[k])
    ]
    return StepExplanation(
        k=k,
        spec=str(traj.spec),
        optimizer=traj.spec.name,
        title=traj.spec.spec.title,
        rule=traj.spec.spec.rule,
        point_before=_freeze(traj.points[k - 1]),
        loss_before=float(traj.losses[k - 1]),
        gradient=_freeze(traj.used_grads[k]),
        true_gradient=_freeze(traj.grads[k - 1]),
        stochastic=_is_stochastic(traj.spec),
        hypers=tuple(_hyper_quantities(traj.spec)),
        states=tuple(states),
        lines=tuple(lines),
        point_after=_freeze(traj.points[k]),
        loss_after=float(traj.losses[k]),
        update=_freeze(traj.updates[k]),
        notes=tuple(notes),
    )


def explain_steps(
    traj: Trajectory, iterations: int, surface: Surface | None = None
) -> list[StepExplanation]:
    """Steps 1 … min(iterations, recorded steps)."""
    return [explain_step(traj, k, surface) for k in range(1, min(iterations, traj.steps) + 1)]


__all__ = [
    "EXPLAINERS",
    "Line",
    "Quantity",
    "StateExplanation",
    "StateVar",
    "StepExplanation",
    "explain_state",
    "explain_step",
    "explain_steps",
    "fmt",
    "fmt_value",
    "tex_num",
    "tex_symbol",
    "tex_value",
]

