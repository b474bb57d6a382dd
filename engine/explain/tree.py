"""The small expression language of the explanations: one tree per line of an update rule.

Each node renders in every mode (the rule in symbols, the rule with step indices, the rule
with this step's numbers substituted; Unicode or LaTeX) and evaluates itself from the
numbers in its leaves, so a test can recompute every line and compare with the recording.
Rules are written with Python operators on the nodes: ``b1 * c.prev("m") + (1 - b1) * c.g``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from engine.explain.format import MINUS, _sub, _sup, fmt, fmt_value, tex_num, tex_row, tex_value

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
