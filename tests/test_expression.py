"""Custom expressions: what the parser accepts, what it refuses (and where), and that the
derived surface is the function typed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine.expression as ex
from engine.expression import (
    MAX_LENGTH,
    ExpressionError,
    parse_expression,
    surface_from_expression,
)

P = np.array([[0.3, -1.2], [1.7, 0.4], [-2.1, 2.5], [0.9, 0.8]])  # all > 0 where needed below
POS = np.abs(P) + 0.1


def f_of(text, p=P):
    return surface_from_expression(text).value(p)


ACCEPT = [
    # text, numpy reference, points
    ("0.1*w1**2 + 2*w2^2", lambda x, y: 0.1 * x**2 + 2 * y**2, P),
    ("sin(x)*cos(y)", lambda x, y: np.sin(x) * np.cos(y), P),
    ("-w1^2", lambda x, y: -(x**2), P),
    ("2^-1*w1", lambda x, y: 0.5 * x, P),
    ("2^3^2", lambda x, y: 512.0 + 0 * x, P),  # right-associative
    ("(w1 - 1)*(w2 + 2)/3", lambda x, y: (x - 1) * (y + 2) / 3, P),
    ("exp(-(x^2 + y^2)) + pi*e", lambda x, y: np.exp(-(x**2 + y**2)) + np.pi * np.e, P),
    ("log(w1) + sqrt(w2)", lambda x, y: np.log(x) + np.sqrt(y), POS),
    ("abs(w1) + tanh(w2) + sinh(w1) - cosh(w2)",
     lambda x, y: np.abs(x) + np.tanh(y) + np.sinh(x) - np.cosh(y), P),
    ("tan(w1/4) + arctan(w2) + atan(w1)",
     lambda x, y: np.tan(x / 4) + np.arctan(y) + np.arctan(x), P),
    ("asin(w1/3) + acos(w2/3) + arcsin(0.5) + arccos(0)",
     lambda x, y: np.arcsin(x / 3) + np.arccos(y / 3) + np.arcsin(0.5) + np.arccos(0), P),
    ("0.1·w1² + 2·w2³ − 3×w1 ÷ 2", lambda x, y: 0.1 * x**2 + 2 * y**3 - 1.5 * x, P),
    ("  1e-3*w1 + .5*w2 + 2.  ", lambda x, y: 1e-3 * x + 0.5 * y + 2.0, P),
    ("+w1 - -w2", lambda x, y: x + y, P),
    ("5", lambda x, y: 5.0 + 0 * x, P),  # a constant is allowed
    ("w1^w2", lambda x, y: x**y, POS),
]


@pytest.mark.parametrize("text,ref,pts", ACCEPT, ids=[a[0] for a in ACCEPT])
def test_accepted_expressions_evaluate_correctly(text, ref, pts):
    s = surface_from_expression(text)
    np.testing.assert_allclose(s.value(pts), ref(pts[:, 0], pts[:, 1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text,ref,pts", ACCEPT, ids=[a[0] for a in ACCEPT])
def test_custom_gradient_and_hessian_match_finite_differences(text, ref, pts):
    s = surface_from_expression(text)
    h = 1e-5
    e = np.eye(2) * h
    for p in pts:
        fd = np.array([(ref(*(p + e[i])) - ref(*(p - e[i]))) / (2 * h) for i in range(2)])
        np.testing.assert_allclose(s.grad(p), fd, rtol=1e-6, atol=1e-7)
        fdh = np.array([(s.grad(p + e[i]) - s.grad(p - e[i])) / (2 * h) for i in range(2)])
        np.testing.assert_allclose(s.hessian(p), fdh, rtol=1e-5, atol=1e-6)


def test_surface_fields_and_vectorization():
    s = surface_from_expression("0.1*w1**2 + 2*w2^2")
    assert s.name == "custom"
    assert s.formula == "0.1*w1**2 + 2*w2**2"
    assert s.gradient_formula == "(0.2*w1, 4*w2)"
    assert s.latex == "0.1 w_{1}^{2} + 2 w_{2}^{2}"
    assert s.gradient_latex == r"\left(0.2 w_{1},\; 4 w_{2}\right)"
    assert s.view == (-5.0, 5.0, -5.0, 5.0) and s.start == (-4.0, 4.0) and s.minima == ()
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-2, 2, 3)), axis=-1)
    assert s.value(grid).shape == (3, 4)
    assert s.grad(grid).shape == (3, 4, 2)
    assert s.hessian(grid).shape == (3, 4, 2, 2)
    np.testing.assert_allclose(s.hessian(grid)[2, 1], [[0.2, 0.0], [0.0, 4.0]])
    c = surface_from_expression("5")  # constants broadcast too
    assert c.value(grid).shape == (3, 4) and not c.grad(grid).any()
    assert surface_from_expression("w1", view=(0, 1, 2, 3)).view == (0.0, 1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        surface_from_expression("w1", view=(1, 0, 0, 1))


def test_formula_text_parses_back_to_the_same_function():
    for text in ("sin(x)*cos(y) + exp(w1/3)", "abs(w1)^1.5 + w2/(1 + w1^2)", "2^-1*w1 - pi*e",
                 "e^w1 + asin(w2/9)"):
        s = surface_from_expression(text)
        again = surface_from_expression(s.formula)
        np.testing.assert_allclose(again.value(P), s.value(P), rtol=1e-14)


def test_abs_hessian_has_no_dirac_delta():
    s = surface_from_expression("abs(w1) + abs(w2)^3")
    np.testing.assert_allclose(s.hessian(np.array([0.5, -2.0])), [[0.0, 0.0], [0.0, 12.0]])


def test_start_avoids_points_where_the_surface_is_undefined():
    s = surface_from_expression("log(w1) + w2^2")
    assert math.isfinite(float(s.value(np.array(s.start))))
    assert s.start[0] > 0


REJECT = [
    # text, position of the problem, words the message must contain
    ("__import__('os')", 0, "double underscores"),
    ("().__class__", 1, "empty parentheses"),
    ("w1 + ().__class__", 6, "empty parentheses"),
    ("w1.__class__", 2, "attribute"),
    ("lambda: 1", 0, "keyword"),
    ("w1.real", 2, "attribute"),
    ("open('x')", 0, "function 'open' is not allowed"),
    ("w1 + 'x'", 5, "strings"),
    ("9**9**9", 1, "exponent"),
    ("2^1000", 1, "exponent"),
    ("w1^-101", 2, "exponent"),
    ("(w1**100)**100", 9, "exponent"),
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("foo + 1", 0, "unknown name 'foo'"),
    ("w3", 0, "unknown name"),
    ("Sin(w1)", 0, "not allowed"),
    ("eval(w1)", 0, "not allowed"),
    ("sin", 0, "needs an argument"),
    ("sin()", 4, "needs an argument"),
    ("sin(w1, w2)", 6, "one argument"),
    ("2w1", 1, "missing operator"),
    ("w1 w2", 3, "missing operator"),
    ("x if y else 1", 2, "keyword"),
    ("(w1 + 1", 0, "unclosed"),
    ("w1 + 1)", 6, "unmatched"),
    ("w1 +", 4, "ends too early"),
    ("w1 // 2", 4, "missing"),
    ("w1 % 2", 3, "unexpected character"),
    ("w1 @ w2", 3, "unexpected character"),
    ("x[0]", 1, "parentheses"),
    ("a = 1", 2, "'='"),
    ("1/0", 1, "division by zero"),
    ("w1/(2-2)", 2, "division by zero"),
    ("0^-1", 1, "division by zero"),
    ("sqrt(-1)", 0, "not a finite real number"),
    ("log(0)", 0, "not a finite real number"),
    ("(-8)^(1/3)", 4, "not a real number"),
    ("exp(exp(exp(99)))", 4, "not a finite real number"),
    ("1e999", 0, "too large"),
    ("w1 + \u0663", 5, "unexpected character"),  # a non-ASCII digit
    ("w1;w2", 2, "unexpected character"),
]


@pytest.mark.parametrize("text,pos,words", REJECT, ids=[r[0] for r in REJECT])
def test_rejections_point_at_the_problem(text, pos, words):
    with pytest.raises(ExpressionError) as info:
        surface_from_expression(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert words in err.message
    assert err.position == pos
    assert f"column {pos + 1}" in str(err)
    assert err.pointer().splitlines()[1] == " " * pos + "^"


def test_too_long_input_is_refused_before_parsing(monkeypatch):
    def boom(text):
        raise AssertionError("the tokenizer must not run on over-long input")

    monkeypatch.setattr(ex, "tokenize", boom)
    for n in (MAX_LENGTH + 1, 10_000):
        with pytest.raises(ExpressionError, match="too long") as info:
            parse_expression("w1+" * (n // 3) + "w1")
        assert info.value.position == MAX_LENGTH


def test_longest_allowed_input_is_accepted():
    text = "w1 + " * 99 + "w2+w1"
    assert len(text) == MAX_LENGTH
    assert np.isfinite(surface_from_expression(text).value(np.array([1.0, 1.0])))


def test_nesting_depth_is_limited():
    ok = "(" * ex.MAX_DEPTH + "w1" + ")" * ex.MAX_DEPTH
    assert surface_from_expression(ok).value(np.array([2.0, 0.0])) == 2.0
    deep = "(" * (ex.MAX_DEPTH + 1) + "w1" + ")" * (ex.MAX_DEPTH + 1)
    with pytest.raises(ExpressionError, match="nested too deeply") as info:
        surface_from_expression(deep)
    assert info.value.position == ex.MAX_DEPTH
    for deep in ("-" * 40 + "w1", "sin(" * 40 + "w1" + ")" * 40, "^".join(["w1"] * 40)):
        with pytest.raises(ExpressionError, match="nested too deeply"):
            surface_from_expression(deep)


def test_expressions_too_complex_to_differentiate_are_refused():
    product = "*".join(f"(w1+{i}*w2)" for i in range(40))  # Hessian: ~1600 long terms
    with pytest.raises(ExpressionError, match="too complex"):
        surface_from_expression(product)
    tower = "^".join(["w1"] * 25)
    with pytest.raises(ExpressionError, match="too complex"):
        surface_from_expression(tower)


def test_non_text_is_refused():
    with pytest.raises(ExpressionError):
        parse_expression(42)  # type: ignore[arg-type]


def test_parser_never_evaluates_text(monkeypatch):
    """The module must not reach eval/exec/sympify with user text: make them explode."""
    import builtins

    import sympy

    def forbidden(*args, **kwargs):
        raise AssertionError("user text reached eval/exec/sympify")

    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy, "parse_expr", forbidden, raising=False)
    real_eval = builtins.eval

    def guarded_eval(src, *args, **kwargs):
        if isinstance(src, str) and "ATTACK" in src:
            raise AssertionError("user text reached eval")
        return real_eval(src, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", guarded_eval)
    expr = parse_expression("sin(w1) + w2^2")
    assert str(expr) == "w2**2 + sin(w1)"
    with pytest.raises(ExpressionError):
        parse_expression("ATTACK('x')")


# -- numbers beyond float64's exact integers, non-real powers, abs of functions (issue 8 §6)


@pytest.mark.parametrize("text,ref", [
    ("sin(2^64)*x", lambda x, y: np.sin(2.0**64) * x),
    ("log(2^100)*x", lambda x, y: np.log(2.0**100) * x),
    ("x/2^100 + 3^40*y", lambda x, y: x / 2.0**100 + 3.0**40 * y),
    ("(1e-40*x)^10 + y", lambda x, y: (1e-40 * x) ** 10 + y),
])
def test_big_integers_follow_float_semantics(text, ref):
    s = surface_from_expression(text)
    np.testing.assert_allclose(s.value(P), ref(P[:, 0], P[:, 1]), rtol=1e-12)
    assert np.all(np.isfinite(s.grad(P))) and np.all(np.isfinite(s.hessian(P)))


@pytest.mark.parametrize("text", ["(10^40*x)^10", "(1e40*x)^10", "(10^50*y)^7"])
def test_numbers_beyond_float_range_are_refused_clearly(text):
    with pytest.raises(ExpressionError, match="beyond the range of floating point"):
        surface_from_expression(text)


@pytest.mark.parametrize("text,pos", [("(-3)^x", 4), ("(2-5)^(x*y)", 5), ("-3^x + (-e)^y", 11)])
def test_negative_base_to_a_variable_power_is_refused(text, pos):
    with pytest.raises(ExpressionError, match="not real") as info:
        surface_from_expression(text)
    assert info.value.position == pos


def test_a_negative_base_with_a_constant_integer_power_stays_allowed():
    s = surface_from_expression("(-3)^2*x + (-2)^3*y")
    np.testing.assert_allclose(s.value(P), 9 * P[:, 0] - 8 * P[:, 1])


ABS_POINTS = np.array([[0.3, 1.7], [2.5, 0.6], [1.6, 2.2], [0.7, 0.4]])  # away from kinks


@pytest.mark.parametrize("text,ref", [
    ("abs(log(x))", lambda x, y: np.abs(np.log(x)) + 0 * y),
    ("abs(sqrt(x)) + y^2", lambda x, y: np.abs(np.sqrt(x)) + y**2),
    ("abs(x^y)", lambda x, y: np.abs(x**y)),
    ("abs(log(x) - y)^3", lambda x, y: np.abs(np.log(x) - y) ** 3),
    ("abs(asin(x/3) * y)", lambda x, y: np.abs(np.arcsin(x / 3) * y)),
])
def test_abs_of_functions_not_provably_real_is_supported(text, ref):
    s = surface_from_expression(text)
    pts = ABS_POINTS
    np.testing.assert_allclose(s.value(pts), ref(pts[:, 0], pts[:, 1]), rtol=1e-12)
    h, e = 1e-5, np.eye(2) * 1e-5
    for p in pts:
        fd = np.array([(ref(*(p + e[i])) - ref(*(p - e[i]))) / (2 * h) for i in range(2)])
        np.testing.assert_allclose(s.grad(p), fd, rtol=1e-6, atol=1e-7)
        fdh = np.array([(s.grad(p + e[i]) - s.grad(p - e[i])) / (2 * h) for i in range(2)])
        np.testing.assert_allclose(s.hessian(p), fdh, rtol=1e-5, atol=1e-6)
    assert "abs(" in s.formula and "sign(" in s.gradient_formula
    assert r"\left|" in s.latex and "RealAbs" not in s.gradient_latex
    again = surface_from_expression(s.formula)  # the formula reads back
    np.testing.assert_allclose(again.value(pts), s.value(pts), rtol=1e-14)


def test_abs_is_undefined_where_its_argument_is():
    s = surface_from_expression("abs(log(x)) + y")
    with np.errstate(invalid="ignore"):
        assert np.isnan(s.value(np.array([-1.0, 0.0])))
    assert s.start[0] > 0
