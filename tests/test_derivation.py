"""Worked derivations: numbers equal the trajectories; Markdown and LaTeX are well formed."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from engine import get_surface, parse_spec, run_trajectory
from engine.derivation import MAX_MATH_WIDTH, line_rows, math_width, tex_text, to_latex, to_markdown
from engine.explain import explain_step
from engine.presets import COURSE
from tests.test_explain import ALL_SPECS

QUAD = get_surface("quadratic")

# COURSE.md section 2: W after iterations 1 and 2, as the course prints them (float32 code).
COURSE_TABLE = {
    "gd(lr=0.4)": [("-4.6", "1.2"), ("-4.232", "-0.72")],
    "momentum(lr=0.6,beta=0.5)": [("-4.7", "0.4"), ("-4.268", "1.12")],
    "rmsprop(lr=0.3,alpha=0.9,eps=1e-6,eps_in_sqrt=true)": [
        ("-4.0513215", "-1.0513168"), ("-3.4351975", "-0.5915234")],
    "adam(lr=0.2,beta1=0.9,beta2=0.999,eps=1e-6)": [
        ("-4.8", "-1.8"), ("-4.6002548", "-1.6008245")],
}

_NUM = r"[−-]?\d+(?:\.\d+)?(?:e[−-]?\d+)?"


_TEX_NUM = r"-?(?:\d+(?:\.\d+)?(?:\\times 10\^\{-?\d+\})?|10\^\{-?\d+\})"


def _num(text: str) -> float:
    return float(text.replace("−", "-"))


def _tex_num(text: str) -> float:
    """A number as engine.explain.tex_num writes it: 0.4, 10^{-6}, 2.5\\times 10^{-7}."""
    m = re.fullmatch(r"(-?)(?:(\d+(?:\.\d+)?)(?:\\times 10\^\{(-?\d+)\})?|10\^\{(-?\d+)\})",
                     text)
    assert m, text
    sign = -1.0 if m.group(1) else 1.0
    if m.group(4) is not None:
        return sign * 10.0 ** int(m.group(4))
    return sign * float(m.group(2)) * 10.0 ** int(m.group(3) or 0)


def _course_runs(steps=30):
    return [run_trajectory(QUAD, s, COURSE.start, steps) for s in COURSE.specs()]


@pytest.fixture(scope="module")
def all_runs():
    return [run_trajectory(QUAD, parse_spec(s), COURSE.start, 4) for s in ALL_SPECS]


def _summary(md: str) -> dict[tuple[str, int], tuple[float, float]]:
    rows = {}
    pattern = rf"^\| `([^`]+)` \| (\d+) \| \(({_NUM}), ({_NUM})\) \| ({_NUM}) \|$"
    for m in re.finditer(pattern, md, flags=re.M):
        rows[(m.group(1), int(m.group(2)))] = (_num(m.group(3)), _num(m.group(4)))
    return rows


def test_course_derivation_has_the_course_table_numbers():
    md = to_markdown(QUAD, _course_runs(), COURSE.start)
    rows = _summary(md)
    assert len(rows) == 8
    for spec, points in COURSE_TABLE.items():
        for k, (x, y) in enumerate(points, 1):
            got = rows[(spec, k)]
            for shown, value in zip((x, y), got, strict=True):
                decimals = len(shown.split(".")[1]) if "." in shown else 0
                # equal at the course's shown precision, up to one unit in the last digit
                # (the course's table comes from float32 arithmetic; the engine is float64)
                assert abs(value - float(shown)) <= 1.0001 * 10.0**-decimals, (spec, k, shown)
    # GD and momentum are exact in both precisions: the course's rows appear literally
    for vec in ["(−4.6, 1.2)", "(−4.232, −0.72)", "(−4.7, 0.4)", "(−4.268, 1.12)",
                "(−3.4351975,", "−1.0513168)", "(−4.6002548, −1.6008245)"]:
        assert vec in md
    # and the derivation itself writes the course's steps with numbers substituted
    assert r"\nabla f(-5,\ -2)" in md
    assert r"\begin{pmatrix}-4.6 \\ 1.2\end{pmatrix}" in md


def test_derivation_numbers_equal_the_trajectories(all_runs):
    md = to_markdown(QUAD, all_runs, COURSE.start, iterations=3)
    rows = _summary(md)
    for traj in all_runs:
        for k in (1, 2, 3):
            np.testing.assert_allclose(rows[(str(traj.spec), k)], traj.points[k], rtol=6e-8)
    # every "New point" sentence matches its run's point, in order
    pattern = rf"New point \$w_{{(\d+)}} = \\left\(({_TEX_NUM}),\\ ({_TEX_NUM})\\right\)\$"
    found = [(int(k), _tex_num(x), _tex_num(y)) for k, x, y in re.findall(pattern, md)]
    assert len(found) == 3 * len(all_runs)
    expected = [(k, *traj.points[k]) for traj in all_runs for k in (1, 2, 3)]
    for (k, x, y), (ke, xe, ye) in zip(found, expected, strict=True):
        assert k == ke
        np.testing.assert_allclose((x, y), (xe, ye), rtol=6e-8, atol=1e-300)


def test_markdown_shows_rules_substitutions_and_sections(all_runs):
    md = to_markdown(QUAD, all_runs[:3], COURSE.start)
    assert md.startswith("# Worked derivation: the first 2 iterations")
    assert r"f(w_1, w_2) = 0.1\,w_1^2 + 2\,w_2^2" in md
    assert md.count("### Iteration 1") == 3 and md.count("### Iteration 2") == 3
    assert "### Iteration 3" not in md
    assert r"w_{1} &= w_{0} - \eta\,g_{1}" in md
    assert "## Summary" in md


def _check_math_balanced(text: str) -> None:
    depth = 0
    for m in re.finditer(r"\\[{}]|[{}]", text):
        tok = m.group(0)
        if tok in ("\\{", "\\}"):
            continue
        depth += 1 if tok == "{" else -1
        assert depth >= 0, text[max(0, m.start() - 60): m.start() + 10]
    assert depth == 0


def _check_environments(text: str) -> None:
    stack = []
    for m in re.finditer(r"\\(begin|end)\{([^}]+)\}", text):
        if m.group(1) == "begin":
            stack.append(m.group(2))
        else:
            assert stack and stack.pop() == m.group(2), text[m.start() - 80: m.start() + 20]
    assert not stack


def test_markdown_is_well_formed(all_runs):
    md = to_markdown(QUAD, all_runs, COURSE.start)
    unescaped = re.sub(r"\\\$", "", md)
    assert unescaped.count("$") % 2 == 0
    # display blocks open and close on their own lines
    assert md.count("\n$$\n") % 2 == 0 or md.count("$$") % 2 == 0
    for block in re.findall(r"\$\$(.*?)\$\$", unescaped, flags=re.S):
        _check_math_balanced(block)
        _check_environments(block)
    inline = re.sub(r"\$\$.*?\$\$", "", unescaped, flags=re.S)
    for span in re.findall(r"\$([^$]*)\$", inline):
        _check_math_balanced(span)
    _check_environments(md)
    assert "eps_in_sqrt" in md  # spec strings in code spans, verbatim


def test_latex_is_well_formed_ascii_and_escaped(all_runs):
    tex = to_latex(QUAD, all_runs, COURSE.start)
    assert tex.isascii()
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    packages = re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]+)\}", tex)
    assert set(packages) <= {"amsmath", "geometry"}
    _check_environments(tex)
    body = re.sub(r"\\[{}$%&#_]", "", tex)
    _check_math_balanced(body)
    assert body.count("$") % 2 == 0
    assert r"eps\_in\_sqrt=true" in tex
    # no bare underscore in running text: outside math every _ is escaped
    text_only = re.sub(r"\$[^$]*\$", "", re.sub(
        r"\\begin\{align\*\}.*?\\end\{align\*\}", "", tex, flags=re.S))
    assert not re.search(r"(?<!\\)_", text_only)


def test_tex_text_escapes_and_converts():
    assert tex_text("eps_in_sqrt & 100% #1 {x}") == r"eps\_in\_sqrt \& 100\% \#1 \{x\}"
    assert tex_text("v = β·v + (1−β)·g") == r"v = $\beta \cdot$v + (1$- \beta$)$\cdot$g"
    assert tex_text("m̂ / (1 − β₁ᵗ)") == r"$\hat{m}$ / (1 $-$ $\beta _{1}^{t}$)"
    assert tex_text("café…").isascii()


def test_long_lines_are_broken_to_the_page_width():
    traj = run_trajectory(QUAD, parse_spec("nadam(lr=0.2)"), COURSE.start, 2)
    widths = [math_width(r) for k in (1, 2) for line in explain_step(traj, k).lines
              for r in line_rows(line)]
    assert max(widths) <= MAX_MATH_WIDTH + 10  # the lhs "w_{2} &=" comes on top
    update = explain_step(traj, 2).lines[-1]
    assert math_width(update.substituted_latex) > MAX_MATH_WIDTH  # so it had to be broken
    assert any(r.startswith(r"&\quad -") for r in line_rows(update))
    assert math_width(r"\begin{pmatrix}-4.6 \\ 1.2") > 0  # a cut-off matrix still measures


def test_iterations_and_short_runs():
    runs = [run_trajectory(QUAD, parse_spec("gd(lr=0.4)"), COURSE.start, 1)]
    md = to_markdown(QUAD, runs, COURSE.start, iterations=3)
    assert "### Iteration 1" in md and "### Iteration 2" not in md
    assert "recorded only 1 step" in md
    diverged = [run_trajectory(QUAD, parse_spec("gd(lr=100)"), COURSE.start, 10)]
    assert "diverged" in to_markdown(QUAD, diverged, COURSE.start, iterations=30)
    with pytest.raises(ValueError, match="iterations"):
        to_latex(QUAD, runs, COURSE.start, iterations=0)
    with pytest.raises(ValueError, match="trajectory"):
        to_markdown(QUAD, [], COURSE.start)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles_with_pdflatex(all_runs, tmp_path):
    tex = to_latex(QUAD, all_runs, COURSE.start, iterations=2)
    (tmp_path / "derivation.tex").write_text(tex, encoding="ascii")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
         "derivation.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    log = (tmp_path / "derivation.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "derivation.pdf").stat().st_size > 1000
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \((\d+\.?\d*)pt too wide", log)]
    assert all(x < 2.0 for x in overfull), overfull
