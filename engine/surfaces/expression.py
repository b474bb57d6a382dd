"""Custom surfaces typed by the user, such as ``0.1*w1**2 + 2*w2^2`` or ``sin(x)*cos(y)``.

Nothing the user types is ever evaluated as code. A small hand-written tokenizer and
recursive-descent parser accept only

* numbers (``2``, ``0.5``, ``.5``, ``1e-3``), the variables ``w1``, ``w2`` (or ``x``, ``y``)
  and the constants ``pi`` and ``e``;
* ``+ - * /``, powers ``**`` or ``^`` (right-associative; ``-w1^2`` is ``-(w1^2)``), unary
  ``+``/``-``, parentheses, and the typographic forms ``− × · ÷ ² ³`` so a formula copied from
  the app parses too;
* one-argument calls of a fixed whitelist: sin cos tan exp log sqrt abs tanh sinh cosh
  arctan/atan arcsin/asin arccos/acos (``log`` is the natural logarithm).

The parser builds a sympy expression node by node (never ``sympify`` of text), sympy derives
the gradient and Hessian, and ``sympy.lambdify(..., modules="numpy")`` compiles the trees it
built into vectorized numpy functions.

Everything else is refused *before* any heavy work with an :class:`ExpressionError` (a
``ValueError``) whose ``position`` is the 0-based index of the offending character: unknown
names, dunders, attribute access, keywords such as ``lambda``, strings, calls outside the
whitelist, input longer than :data:`MAX_LENGTH`, nesting deeper than :data:`MAX_DEPTH`,
constant exponents larger than :data:`MAX_EXPONENT` in magnitude, and formulas whose gradient
exceeds :data:`MAX_GRADIENT_OPS` operations (their Hessian would take seconds to build).
Constant sub-expressions are also evaluated in floating point as they are parsed, so
``9**9**9``, ``exp(exp(exp(99)))``, ``1/0`` or ``sqrt(-1)`` fail fast instead of asking sympy
for a number with billions of digits or a complex value.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from engine.surfaces.base import Surface

MAX_LENGTH = 500
MAX_DEPTH = 30  # parentheses, calls, unary signs and powers, counted together
MAX_EXPONENT = 100.0
# Size budget for the symbolic gradient (sympy.count_ops). The Hessian and its compilation
# grow much faster than the gradient (a product of k factors has ~k² second-derivative
# terms), so this keeps every accepted formula under ~0.5 s; the built-in surfaces need < 80.
MAX_GRADIENT_OPS = 400

W1 = sympy.Symbol("w1", real=True)
W2 = sympy.Symbol("w2", real=True)
VARIABLES: dict[str, sympy.Symbol] = {"w1": W1, "w2": W2, "x": W1, "y": W2}
CONSTANTS: dict[str, tuple[sympy.Expr, float]] = {
    "pi": (sympy.pi, math.pi),
    "e": (sympy.E, math.e),
}


# name -> (sympy function, float evaluator for constant arguments)
FUNCTIONS: dict[str, tuple[Callable, Callable[[float], float]]] = {
    "sin": (sympy.sin, math.sin),
    "cos": (sympy.cos, math.cos),
    "tan": (sympy.tan, math.tan),
    "exp": (sympy.exp, math.exp),
    "log": (sympy.log, math.log),
    "sqrt": (sympy.sqrt, math.sqrt),
    "abs": (None, abs),  # _RealAbs, defined below
    "tanh": (sympy.tanh, math.tanh),
    "sinh": (sympy.sinh, math.sinh),
    "cosh": (sympy.cosh, math.cosh),
    "arctan": (sympy.atan, math.atan),
    "atan": (sympy.atan, math.atan),
    "arcsin": (sympy.asin, math.asin),
    "asin": (sympy.asin, math.asin),
    "arccos": (sympy.acos, math.acos),
    "acos": (sympy.acos, math.acos),
}

# numbers beyond this are not exact in float64; they are compiled as floats (numpy cannot
# take Python's arbitrary-size integers: np.sin(2**64) fails)
_EXACT_FLOAT_INT = 2**53

_ALLOWED_NAMES = "w1, w2 (or x, y), pi, e"
_ALLOWED_FUNCS = ", ".join(sorted(FUNCTIONS))
_ALIASES = {"−": "-", "×": "*", "·": "*", "÷": "/"}
_SUPERSCRIPTS = {"²": 2, "³": 3}


class ExpressionError(ValueError):
    """A rejected expression; ``position`` is the 0-based index of the problem in the text."""

    def __init__(self, message: str, position: int, text: str = ""):
        self.message = message
        self.position = int(position)
        self.text = text
        super().__init__(f"{message} (at column {self.position + 1})")

    def pointer(self) -> str:
        """The offending text with a caret under the problem, for a monospaced label."""
        line = self.text.replace("\n", " ")
        return f"{line}\n{' ' * self.position}^"


# ----------------------------------------------------------------------------- abs and sign


class _RealAbs(sympy.Function):
    """``abs`` of a real-valued argument.

    sympy's ``Abs`` differentiates through re() and im() unless it can prove its argument
    real, which it cannot for ``log(w1)``, ``sqrt(w1)`` or ``w1^w2`` (they are complex for
    negative w1); its gradient then holds unevaluated derivatives numpy cannot compile.
    On a real surface such arguments are real wherever the surface is defined (elsewhere
    numpy gives NaN, i.e. undefined), so d|u| = sign(u)·du holds wherever it matters.
    """

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg.is_number:
            return sympy.Abs(arg)
        if arg.is_extended_nonnegative:
            return arg
        if arg.is_extended_nonpositive:
            return -arg
        coeff, rest = arg.as_coeff_Mul()
        if coeff.is_number and coeff != 1 and coeff.is_extended_real:
            return sympy.Abs(coeff) * cls(rest)
        return None

    def fdiff(self, argindex=1):
        return _RealSign(self.args[0])

    def _eval_power(self, exponent):
        # |u|² = u² for a provably real u (what sympy's Abs does for abs(w1)^2)
        if exponent.is_Integer and exponent.is_even and self.args[0].is_extended_real:
            return self.args[0] ** exponent
        return None

    def _eval_is_extended_real(self):
        return True

    def _eval_is_extended_nonnegative(self):
        return True

    def _sympystr(self, printer):
        return f"abs({printer._print(self.args[0])})"

    def _latex(self, printer, exp=None):
        tex = rf"\left|{{{printer._print(self.args[0])}}}\right|"
        return f"{tex}^{{{exp}}}" if exp is not None else tex

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.absolute')}({printer._print(self.args[0])})"


class _RealSign(sympy.Function):
    """sign(u) of a real-valued u, the derivative of :class:`_RealAbs`. Its own derivative
    is zero almost everywhere (the Dirac delta at u = 0 has no numpy counterpart, as for
    the built-in abs)."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg.is_number:
            return sympy.sign(arg)
        if arg.is_extended_positive:
            return sympy.S.One
        if arg.is_extended_negative:
            return sympy.S.NegativeOne
        return None

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _eval_is_extended_real(self):
        return True

    def _eval_power(self, exponent):
        # sign(u)² = 1 wherever u ≠ 0 (and the surface is not smooth at u = 0 anyway)
        if exponent.is_Integer and exponent.is_even and exponent.is_positive:
            return sympy.S.One
        return None

    def _sympystr(self, printer):
        return f"sign({printer._print(self.args[0])})"

    def _latex(self, printer, exp=None):
        tex = rf"\operatorname{{sign}}{{\left({printer._print(self.args[0])}\right)}}"
        return f"{tex}^{{{exp}}}" if exp is not None else tex

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.sign')}({printer._print(self.args[0])})"


FUNCTIONS["abs"] = (_RealAbs, abs)


# ----------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "op", "sup", "(", ")", "end", or "error"
    text: str
    pos: int
    error: ExpressionError | None = None


_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens. A character the grammar has no use for ends the list with
    an ``"error"`` token, which the parser raises when it gets there, so the first problem
    in reading order is the one reported (``open('x')`` complains about ``open``)."""
    tokens: list[Token] = []
    try:
        _scan(text, tokens)
    except ExpressionError as exc:
        tokens.append(Token("error", "", exc.position, exc))
        return tokens
    tokens.append(Token("end", "", len(text)))
    return tokens


def _scan(text: str, tokens: list[Token]) -> None:
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m:
            tokens.append(Token("num", m.group(), i))
            i = m.end()
            continue
        m = _NAME.match(text, i)
        if m:
            tokens.append(Token("name", m.group(), i))
            i = m.end()
            continue
        if text.startswith("**", i):
            tokens.append(Token("op", "^", i))
            i += 2
            continue
        if ch in "+-*/^":
            tokens.append(Token("op", ch, i))
        elif ch in _ALIASES:
            tokens.append(Token("op", _ALIASES[ch], i))
        elif ch in _SUPERSCRIPTS:
            tokens.append(Token("sup", ch, i))
        elif ch in "()":
            tokens.append(Token(ch, ch, i))
        elif ch == ".":
            raise ExpressionError("attribute access ('.') is not allowed", i, text)
        elif ch in "'\"":
            raise ExpressionError("strings are not allowed", i, text)
        elif ch == ",":
            raise ExpressionError("functions take exactly one argument (unexpected ',')", i, text)
        elif ch in "[]{}":
            raise ExpressionError(f"unexpected {ch!r}: use round parentheses", i, text)
        elif ch == "=":
            raise ExpressionError("'=' is not allowed: type only the right-hand side", i, text)
        else:
            raise ExpressionError(f"unexpected character {ch!r}", i, text)
        i += 1


# ----------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class Node:
    """A parsed sub-expression: its sympy tree and, if it is constant, its float value."""

    expr: sympy.Expr
    value: float | None  # None when the node depends on w1 or w2


class _Parser:
    """Recursive descent over the grammar::

        sum     := product (("+" | "-") product)*
        product := unary (("*" | "/") unary)*
        unary   := ("+" | "-") unary | power
        power   := atom ("^" unary | "²" | "³")?      (right-associative)
        atom    := number | name | name "(" sum ")" | "(" sum ")"
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers
    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, pos, self.text)

    @property
    def tok(self) -> Token:
        tok = self.tokens[self.i]
        if tok.error is not None:
            raise tok.error
        return tok

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def check_name(self, tok: Token) -> None:
        name = tok.text
        if name.startswith("__") or name.endswith("__"):
            raise self.error(f"names with double underscores are not allowed ({name!r})",
                             tok.pos)
        if keyword.iskeyword(name) or keyword.issoftkeyword(name):
            raise self.error(f"{name!r} is a Python keyword, not part of a formula", tok.pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression is nested too deeply (more than {MAX_DEPTH} levels)",
                             pos)

    def leave(self) -> None:
        self.depth -= 1

    def constant(self, value: float, pos: int, what: str) -> float:
        if not math.isfinite(value):
            raise self.error(f"{what} is not a finite number", pos)
        return value

    def combine(self, op: str, a: Node, b: Node, pos: int) -> Node:
        """Apply a binary operator, folding constants in float first (to fail fast)."""
        if op == "^" and b.value is not None and abs(b.value) > MAX_EXPONENT:
            raise self.error(
                f"exponent {b.value:g} is too large (at most {MAX_EXPONENT:g} in magnitude)", pos
            )
        value = None
        if a.value is not None and b.value is not None:
            try:
                if op == "+":
                    value = a.value + b.value
                elif op == "-":
                    value = a.value - b.value
                elif op == "*":
                    value = a.value * b.value
                elif op == "/":
                    value = a.value / b.value
                else:
                    value = _float_pow(a.value, b.value)
            except ZeroDivisionError:
                raise self.error("division by zero", pos) from None
            except (OverflowError, ValueError):
                raise self.error("the result is too large or not a real number", pos) from None
            self.constant(value, pos, "the result")
        if op == "/" and b.value == 0:
            raise self.error("division by zero", pos)
        if op == "^" and a.value is not None and a.value < 0 and b.value is None:
            raise self.error(
                f"a negative number to a variable power is not real (({a.value:g})^0.5 is "
                f"complex); write -({-a.value:g}^…) or use abs(…)", pos)
        if op == "+":
            expr = a.expr + b.expr
        elif op == "-":
            expr = a.expr - b.expr
        elif op == "*":
            expr = a.expr * b.expr
        elif op == "/":
            expr = a.expr / b.expr
        else:
            expr = a.expr**b.expr
            exp_ = expr.exp if isinstance(expr, sympy.Pow) else None
            if exp_ is not None and exp_.is_number and abs(float(exp_)) > MAX_EXPONENT:
                raise self.error(
                    f"combined exponent {float(exp_):g} is too large "
                    f"(at most {MAX_EXPONENT:g} in magnitude)", pos)
        if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
            raise self.error("the result is undefined, infinite or complex", pos)
        return _node(expr, value)

    # -- grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("the expression is empty", 0)
        node = self.sum()
        tok = self.tok
        if tok.kind != "end":
            if tok.kind == "name":
                self.check_name(tok)
            if tok.kind in ("num", "name", "("):
                raise self.error(
                    f"missing operator before {tok.text!r} (write 2*w1, not 2w1)", tok.pos)
            if tok.kind == ")":
                raise self.error("unmatched ')'", tok.pos)
            raise self.error(f"unexpected {tok.text!r}", tok.pos)
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.advance()
            node = self.combine(op.text, node, self.product(), op.pos)
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.advance()
            node = self.combine(op.text, node, self.unary(), op.pos)
        return node

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text in "+-":
            self.advance()
            self.enter(tok.pos)
            operand = self.unary()
            self.leave()
            if tok.text == "+":
                return operand
            value = None if operand.value is None else -operand.value
            return _node(-operand.expr, value)
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        tok = self.tok
        if tok.kind == "op" and tok.text == "^":
            self.advance()
            self.enter(tok.pos)
            exponent = self.unary()  # right-associative, and allows 2^-1
            self.leave()
            return self.combine("^", base, exponent, tok.pos)
        if tok.kind == "sup":
            self.advance()
            k = _SUPERSCRIPTS[tok.text]
            return self.combine("^", base, Node(sympy.Integer(k), float(k)), tok.pos)
        return base

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            return self.number(tok)
        if tok.kind == "name":
            self.advance()
            return self.name(tok)
        if tok.kind == "(":
            self.advance()
            self.enter(tok.pos)
            if self.tok.kind == ")":
                raise self.error("empty parentheses", self.tok.pos)
            node = self.sum()
            self.expect_close(tok)
            self.leave()
            return node
        if tok.kind == "end":
            raise self.error("the expression ends too early: a number, variable or '(' "
                             "is missing", tok.pos)
        if tok.kind == ")":
            raise self.error("unexpected ')': a number, variable or '(' is missing", tok.pos)
        raise self.error(f"unexpected {tok.text!r}: a number, variable or '(' is missing",
                         tok.pos)

    def expect_close(self, opening: Token) -> None:
        if self.tok.kind == ")":
            self.advance()
            return
        if self.tok.kind == "end":
            raise self.error("unclosed '('", opening.pos)
        raise self.error(f"expected ')' but found {self.tok.text!r}", self.tok.pos)

    def number(self, tok: Token) -> Node:
        # any number within float64's range: the formula shown for an accepted expression
        # holds its folded constants (1/7.7e-225 is 1.29e+224, 10000000001^10 a 101-digit
        # integer), and it must read back; integers stay exact until compiled (_numeric)
        try:
            value = float(tok.text)
        except OverflowError:  # (an integer literal beyond float range)
            value = math.inf
        if not math.isfinite(value):
            shown = tok.text if len(tok.text) <= 24 else f"{tok.text[:12]}… " \
                f"({len(tok.text)} characters)"
            raise self.error(f"number {shown} is too large", tok.pos)
        if re.fullmatch(r"[0-9]+", tok.text):
            return Node(sympy.Integer(int(tok.text)), value)
        return Node(sympy.Float(value), value)

    def name(self, tok: Token) -> Node:
        name = tok.text
        self.check_name(tok)
        if self.tok.kind == "(":
            if name not in FUNCTIONS:
                raise self.error(
                    f"function {name!r} is not allowed; allowed functions: {_ALLOWED_FUNCS}",
                    tok.pos)
            return self.call(tok)
        if name in FUNCTIONS:
            raise self.error(f"function {name!r} needs an argument in parentheses, "
                             f"e.g. {name}(w1)", tok.pos)
        if name in VARIABLES:
            return Node(VARIABLES[name], None)
        if name in CONSTANTS:
            sym, value = CONSTANTS[name]
            return Node(sym, value)
        raise self.error(f"unknown name {name!r}; allowed names: {_ALLOWED_NAMES}", tok.pos)

    def call(self, name_tok: Token) -> Node:
        opening = self.advance()  # "("
        self.enter(opening.pos)
        if self.tok.kind == ")":
            raise self.error(f"{name_tok.text}() needs an argument", self.tok.pos)
        arg = self.sum()
        self.expect_close(opening)
        self.leave()
        sym_f, float_f = FUNCTIONS[name_tok.text]
        value = None
        if arg.value is not None:
            try:
                value = float(float_f(arg.value))
            except (ValueError, OverflowError):
                raise self.error(
                    f"{name_tok.text}({arg.value:g}) is not a finite real number", name_tok.pos
                ) from None
            self.constant(value, name_tok.pos, f"{name_tok.text}(…)")
        expr = sym_f(arg.expr)
        if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
            raise self.error(f"{name_tok.text}(…) is undefined, infinite or complex here",
                             name_tok.pos)
        return _node(expr, value)


def _node(expr: sympy.Expr, value: float | None) -> Node:
    """A parsed node; a constant that sympy holds as a number float64 cannot represent
    exactly (2^-100 as a 31-digit fraction, 3184^-88 over a 309-digit integer, 1e300^-2 as
    1e-600) becomes the float the parser folded, so constants follow float semantics and
    the formula shown reads back as the same function."""
    if value is not None and expr.is_Number and not (
        isinstance(expr, sympy.Rational) and abs(expr.p) <= _EXACT_FLOAT_INT
        and expr.q <= _EXACT_FLOAT_INT
    ):
        expr = sympy.Float(value)
    return Node(expr, value)


def _float_pow(a: float, b: float) -> float:
    if a == 0 and b < 0:
        raise ZeroDivisionError
    r = a**b  # raises OverflowError on overflow
    if isinstance(r, complex):
        raise ValueError("complex power")
    return float(r)


# ----------------------------------------------------------------------------- public API


def parse_expression(text: str) -> sympy.Expr:
    """The sympy expression for ``text`` in the variables :data:`W1`, :data:`W2`.

    Raises :class:`ExpressionError` for anything outside the grammar (see the module doc).
    """
    if not isinstance(text, str):
        raise ExpressionError("the expression must be text", 0, "")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is too long ({len(text)} characters; at most {MAX_LENGTH})",
            MAX_LENGTH, text[:MAX_LENGTH])
    return _Parser(text).parse().expr


def _strip_distributions(expr: sympy.Expr) -> sympy.Expr:
    """Second derivatives of abs() contain DiracDelta; it is zero almost everywhere and has
    no numpy counterpart, so drop it (the Hessian of |w1| is 0 away from w1 = 0)."""
    return expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)


def _check_real(expr: sympy.Expr, text: str) -> None:
    """Refuse what numpy cannot compute as a real function (a safety net behind the
    parser's own checks): complex constants, infinities, unevaluated derivatives."""
    if expr.has(sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError("the expression or its gradient is complex or infinite: "
                              "only real surfaces can be optimized", 0, text)
    if expr.has(sympy.Derivative, sympy.Subs, sympy.re, sympy.im):
        raise ExpressionError("the gradient of this expression cannot be computed "
                              "symbolically; try writing it another way", 0, text)


def _numeric(expr: sympy.Expr, text: str) -> sympy.Expr:
    """``expr`` with every number numpy cannot take exactly replaced by its float.

    Integers and fractions beyond 2**53 (``2^64``, ``10^40`` raised to a power) are Python
    integers in the compiled code, which numpy's functions reject; as floats they follow
    float64 semantics. A number beyond float64's range is refused.
    """
    swap = {}
    for atom in expr.atoms(sympy.Number):
        if isinstance(atom, sympy.Rational) and abs(atom.p) <= _EXACT_FLOAT_INT \
                and atom.q <= _EXACT_FLOAT_INT:
            continue
        try:
            value = float(atom)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ExpressionError(
                f"the expression needs the number {str(sympy.Float(atom, 3)).lower()}, beyond "
                f"the range of "
                f"floating point (about 1.8e308)", 0, text)
        swap[atom] = sympy.Float(value)
    return expr.xreplace(swap) if swap else expr


def _lambdify(exprs):
    return sympy.lambdify((W1, W2), exprs, modules="numpy")


class _Printer(StrPrinter):
    """sympy's text, but in this parser's vocabulary (abs, e), so formulas read back in."""

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Exp1(self, expr):
        return "e"


def _fmt(expr: sympy.Expr) -> str:
    return _Printer({"full_prec": False}).doprint(expr)


def _default_start(f, view) -> tuple[float, float]:
    """Near the view's top-left corner (where the built-in surfaces start), moved to the
    first candidate where f and ∇f are finite (log(w1) is undefined at w1 < 0)."""
    x0, x1, y0, y1 = view
    fractions = ((0.1, 0.9), (0.9, 0.9), (0.9, 0.1), (0.1, 0.1), (0.7, 0.7), (0.3, 0.3),
                 (0.5, 0.5), (0.6, 0.4))
    for fx, fy in fractions:
        p = np.array([x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)])
        with np.errstate(all="ignore"):
            ok = np.isfinite(f.value(p)) and np.all(np.isfinite(f.grad(p)))
        if ok:
            return float(p[0]), float(p[1])
    return float(x0 + 0.1 * (x1 - x0)), float(y0 + 0.9 * (y1 - y0))


def surface_from_expression(
    text: str, view: tuple[float, float, float, float] | None = None
) -> Surface:
    """A :class:`Surface` named ``"custom"`` for the formula ``text``.

    Value, gradient and Hessian are derived symbolically and compiled to vectorized numpy;
    ``formula``/``gradient_formula`` are sympy's text (which this parser reads back) and
    ``latex``/``gradient_latex`` come from ``sympy.latex``. Constants are allowed (their
    gradient is zero). ``view`` defaults to (−5, 5, −5, 5); no minima are known.
    """
    expr = parse_expression(text)
    if view is None:
        view = (-5.0, 5.0, -5.0, 5.0)
    view = tuple(float(v) for v in view)
    if len(view) != 4 or not all(math.isfinite(v) for v in view) or not (
        view[0] < view[1] and view[2] < view[3]
    ):
        raise ValueError(f"view must be (xmin, xmax, ymin, ymax) with min < max, got {view}")
    g1, g2 = sympy.diff(expr, W1), sympy.diff(expr, W2)
    ops = sympy.count_ops(g1) + sympy.count_ops(g2)
    if ops > MAX_GRADIENT_OPS:
        raise ExpressionError(
            f"the expression is too complex to differentiate quickly (its gradient has {ops} "
            f"operations; at most {MAX_GRADIENT_OPS})", 0, text)
    h11, h12, h22 = (_strip_distributions(sympy.diff(g, v))
                     for g, v in ((g1, W1), (g1, W2), (g2, W2)))
    for part in (expr, g1, g2, h11, h12, h22):
        _check_real(part, text)
    value_fn = _lambdify(_numeric(expr, text))
    grad_fn = _lambdify(tuple(_numeric(g, text) for g in (g1, g2)))
    hess_fn = _lambdify(tuple(_numeric(h, text) for h in (h11, h12, h22)))
    surface = Surface(
        name="custom",
        title=f"Custom: {text.strip()}",
        formula=_fmt(expr),
        latex=sympy.latex(expr),
        _value=value_fn,
        _grad=grad_fn,
        _hess=hess_fn,
        view=view,
        minima=(),
        gradient_formula=f"({_fmt(g1)}, {_fmt(g2)})",
        gradient_latex=rf"\left({sympy.latex(g1)},\; {sympy.latex(g2)}\right)",
        expression=text.strip(),
        description="A surface typed by the user; gradient and Hessian derived by sympy.",
    )
    start = _default_start(surface, view)
    return replace(surface, start=start)
