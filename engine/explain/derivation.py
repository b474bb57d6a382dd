"""Worked derivations of the first iterations of every run, as Markdown or LaTeX.

This is part (a) of the course exercise done by the app: the surface and its gradient, the
start point, then for each optimizer and each of the first k iterations the gradient, the
state updates and the new point, each written as the rule in symbols, the rule with the
numbers substituted and the result. Every number comes from :mod:`engine.explain`, i.e.
from the recorded trajectory, so the derivation matches the runs exactly.

The LaTeX is a complete ``article`` document using only amsmath and geometry (both in a
basic TeX Live install) and pure ASCII, so a plain ``pdflatex`` compiles it. Long equations
are broken at their top-level + and − so they stay within the page width.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

from engine.explain import (
    GREEK_LATEX,
    MINUS,
    SUBSCRIPTS,
    Line,
    StepExplanation,
    explain_state,
    explain_steps,
    fmt,
    fmt_value,
    tex_symbol,
    tex_value,
)
from engine.surfaces.base import Surface
from engine.trajectory import Trajectory

MAX_MATH_WIDTH = 58  # visible characters per displayed row before a line is broken

PRECISION_NOTE = (
    "Numbers are computed in double precision (float64) and shown with up to 8 significant "
    "digits. Vectors are pairs (w1, w2); products, squares, square roots, divisions, "
    "absolute values and maxima of vectors act per coordinate. A float32 computation (such "
    "as NumPy code on float32 arrays) can differ in the last digits shown."
)


# ============================================================================ text escaping

_TEXT_MATH = {
    "·": r"\cdot", "←": r"\leftarrow", "→": r"\rightarrow", "×": r"\times", "√": r"\surd",
    "‖": r"\|", "≈": r"\approx", "≠": r"\neq", "≤": r"\leq", "≥": r"\geq", "∈": r"\in",
    "½": r"\tfrac{1}{2}", "⟨": r"\langle", "⟩": r"\rangle", "∞": r"\infty", "±": r"\pm",
    "∑": r"\sum", "∏": r"\prod", "<": "<", ">": ">", "|": "|", "ᵀ": r"^{\top}",
    "⁻¹": "^{-1}", "−": "-", "∼": r"\sim",
}
_TEXT_PLAIN = {
    "–": "--", "—": "---", "…": r"\ldots{}", "’": "'", "‘": "`", "“": "``", "”": "''",
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}", "\u00a0": "~",
}
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ᵗⁿ", "0123456789+-tn", strict=True))
_ACCENTS = {"\u0302": r"\hat", "\u0303": r"\tilde"}


def tex_text(text: str) -> str:
    """Unicode prose (titles, conventions, notes) as pure-ASCII LaTeX text.

    Greek letters, sub/superscripts and operators become inline math, LaTeX's special
    characters are escaped, and anything else non-ASCII is reduced to its ASCII letters.
    """
    pieces: list[tuple[bool, str]] = []  # (is_math, text)
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt in _ACCENTS:
            base = GREEK_LATEX.get(ch, ch if ch.isascii() and ch.isalpha() else "x")
            pieces.append((True, f"{_ACCENTS[nxt]}{{{base}}}"))
            i += 2
            continue
        if text.startswith("⁻¹", i):
            pieces.append((True, "^{-1}"))
            i += 2
            continue
        if ch in _SUPER or ch in SUBSCRIPTS:  # a run of super- or subscripts: one ^{…} or _{…}
            table, mark = (_SUPER, "^") if ch in _SUPER else (SUBSCRIPTS, "_")
            j = i
            while j < len(text) and text[j] in table:
                j += 1
            pieces.append((True, mark + "{" + "".join(table[c] for c in text[i:j]) + "}"))
            i = j
            continue
        if ch in GREEK_LATEX:
            pieces.append((True, GREEK_LATEX[ch] + " "))
        elif ch in _TEXT_MATH:
            pieces.append((True, _TEXT_MATH[ch] + " "))
        elif ch in _TEXT_PLAIN:
            pieces.append((False, _TEXT_PLAIN[ch]))
        elif ch.isascii():
            pieces.append((False, ch))
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            pieces.append((False, "".join(_TEXT_PLAIN.get(c, c) for c in ascii_) or "?"))
        i += 1
    out: list[str] = []
    math: list[str] = []
    for is_math, piece in pieces:
        if is_math:
            math.append(piece)
            continue
        if math:
            out.append("$" + "".join(math).strip() + "$")
            math = []
        out.append(piece)
    if math:
        out.append("$" + "".join(math).strip() + "$")
    return "".join(out)


def tex_code(text: str) -> str:
    r"""A spec string in ``\texttt``, escaped, breakable after commas."""
    escaped = "".join(_TEXT_PLAIN.get(c, c) for c in text)
    escaped = escaped.replace(",", r",\allowbreak{}").replace("(", r"(\allowbreak{}")
    return r"\texttt{" + escaped + "}"


def md_text(text: str) -> str:
    """Prose for Markdown: characters Markdown would act on are escaped."""
    return re.sub(r"([\\`*_\[\]<>$|#])", r"\\\1", text)


def md_code(text: str) -> str:
    return f"`{text}`"


# ============================================================================ layout of math


def _strip_group(s: str, i: int) -> tuple[str, int]:
    """The brace group starting at s[i] == "{" and the index after it."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    return s[i + 1 :], len(s)


def math_width(tex: str) -> float:
    """Rough printed width of a LaTeX math string, in characters.

    Column vectors and fractions count as their widest row; commands count as one
    character; sub- and superscripts as half. Good enough to decide where to break.
    """
    width = 0.0
    i = 0
    while i < len(tex):
        if tex.startswith(r"\begin{pmatrix}", i):
            end = tex.find(r"\end{pmatrix}", i)
            if end < 0:
                end = len(tex)
            body = tex[i + len(r"\begin{pmatrix}") : end]
            rows = body.split(r"\\")
            width += max(sum(math_width(c) for c in r.split("&")) for r in rows) + 2
            i = max(end + len(r"\end{pmatrix}"), i + 1)
            continue
        if tex.startswith(r"\frac", i) and i + 5 < len(tex) and tex[i + 5] == "{":
            num, j = _strip_group(tex, i + 5)
            den, j = _strip_group(tex, j)
            width += max(math_width(num), math_width(den))
            i = j
            continue
        if tex.startswith((r"\left", r"\right"), i):
            i += 5 if tex.startswith(r"\left", i) else 6
            continue
        ch = tex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            cmd = m.group(1) if m else ""
            i += len(cmd) + 1
            if cmd in (",", ";", " ", "!", "quad"):
                width += 0.5
            elif cmd not in ("mathrm", "operatorname", "text", "hat", "tilde", "sqrt"):
                width += 1
            continue
        if ch in "^_":
            if i + 1 < len(tex) and tex[i + 1] == "{":
                body, i = _strip_group(tex, i + 1)
                width += 0.6 * math_width(body)
            else:
                width += 0.6
                i += 2
            continue
        if ch in "{}":
            i += 1
            continue
        width += 1.3 if ch in "+-=" else 1
        i += 1
    return width


def line_rows(line: Line, limit: float = MAX_MATH_WIDTH) -> list[str]:
    """The rows of one explained line for an ``align*``/``aligned`` block.

    ``lhs = symbolic = substituted = result``, packed onto as few rows as fit within
    ``limit``; a part too wide on its own is broken at its top-level + and −.
    """
    items: list[tuple[str, str]] = []  # ("eq", part) starts "= part"; ("cont", term) goes on

    def add(text: str, terms: Sequence[str]) -> None:
        if math_width(text) <= limit or len(terms) < 2:
            items.append(("eq", text))
            return
        for i, row in enumerate(_pack(terms, limit)):
            items.append(("eq" if i == 0 else "cont", row))

    add(line.symbolic_latex, line.symbolic_terms_latex)
    if line.substituted_latex != line.symbolic_latex:
        add(line.substituted_latex, line.substituted_terms_latex)
    if line.result_latex not in (line.substituted_latex, line.symbolic_latex):
        items.append(("eq", line.result_latex))
    rows: list[list[str]] = []
    for kind, text in items:
        if kind == "eq" and rows and rows[-1][0] != "cont" and (
            math_width(rows[-1][1]) + math_width(text) + 2 <= limit
        ):
            rows[-1][1] += f" = {text}"
        else:
            rows.append([kind, text])
    out = []
    for i, (kind, text) in enumerate(rows):
        prefix = f"{line.lhs_latex} &=" if i == 0 else ("&=" if kind == "eq" else r"&\quad")
        out.append(f"{prefix} {text}")
    return out


def _pack(terms: Sequence[str], limit: float) -> list[str]:
    """Greedily pack the terms of a sum into rows no wider than ``limit``."""
    rows: list[str] = []
    for term in terms:
        if rows and math_width(f"{rows[-1]} {term}") <= limit:
            rows[-1] = f"{rows[-1]} {term}"
        else:
            rows.append(term)
    return rows


def step_block(step: StepExplanation) -> list[str]:
    """All rows of one step, lines separated by a little vertical space."""
    rows: list[str] = []
    for n, line in enumerate(step.lines):
        line_r = line_rows(line)
        if n < len(step.lines) - 1:
            line_r[-1] += r" \\[3pt]"
        rows += [r + r" \\" if i < len(line_r) - 1 else r for i, r in enumerate(line_r)]
    return rows


def _rule_rows(step: StepExplanation) -> list[str]:
    """The rule in symbols, one ``x ← …`` per row (``\\`` between them), as applied at this
    step: the body of an aligned environment."""
    rows = []
    for line in step.lines:
        lhs, _, rhs = line.rule_latex.partition(r" \leftarrow ")
        rows.append(rf"{lhs} &\leftarrow {rhs}")
    return [r + r" \\" for r in rows[:-1]] + rows[-1:]


def _inline(v) -> str:
    """A value for running text: vectors as rows (a column vector would be too tall)."""
    if isinstance(v, str):  # a choice (schedule=cosine) or a state's label (stopped, kind)
        text = "".join(ch for ch in v if ch.isascii() and ch not in "\\{}$%&#^~")
        return r"\text{" + (text.replace("_", r"\_") or "--") + "}"
    if np.ndim(v) == 1:
        return _row_vec_tex(v)
    if np.ndim(v) == 2:
        return r"\left(" + r",\ ".join(_row_vec_tex(r) for r in v) + r"\right)"
    return tex_value(v)


def _row_vec_tex(v) -> str:
    arr = np.asarray(v, dtype=float)
    return r"\left(" + r",\ ".join(tex_value(float(x)) for x in arr) + r"\right)"


# ============================================================================ the document model


def _check(surface: Surface, trajectories: Sequence[Trajectory], iterations: int) -> int:
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if not trajectories:
        raise ValueError("no runs to derive: give at least one trajectory")
    return iterations


def _short_note(traj: Trajectory, iterations: int) -> str:
    if traj.steps >= iterations:
        return ""
    if traj.diverged:
        return (f"This run stopped after {traj.steps} step(s): it diverged at step "
                f"{traj.diverged_at} ({traj.diverged_reason}).")
    return f"This run recorded only {traj.steps} step(s)."


# Markdown and LaTeX say the same things about a run; the pieces below are written once and
# take the target's escaping as arguments (``text`` for running text, ``code`` for names).


def _start_point(surface: Surface, w0: np.ndarray) -> str:
    """The start point, its loss and its gradient, in inline math (valid in both targets)."""
    f0 = float(surface.value(w0))
    g0 = surface.grad(w0)
    return (f"Start point: $w_0 = {_row_vec_tex(w0)}$, $f(w_0) = {tex_value(f0)}$, "
            f"$\\nabla f(w_0) = {_row_vec_tex(g0)}$.")


def _hyper_lines(traj: Trajectory, code: Callable[[str], str], equals: str) -> list[str]:
    """The "Hyperparameters: …" paragraph (nested specs expanded), or nothing.

    Hyperparameters with a symbol are set in math; the others as ``name equals value`` in
    code, where ``equals`` is how the target writes a plain "=" in running text.
    """
    items = []
    for q in explain_state(traj, 0).hypers:
        if q.symbol:
            items.append(f"${tex_symbol(q.symbol)} = {_inline(q.value)}$ ({code(q.name)})")
        else:
            items.append(f"{code(q.name)} {equals} {code(str(fmt_value(q.value)))}")
    return ["Hyperparameters: " + ", ".join(items) + ".", ""] if items else []


def _initial_lines(traj: Trajectory, w0: np.ndarray, text: Callable[[str], str]) -> list[str]:
    """The run's state before step 1, its own start point where it differs from ``w0``, and
    the rule's notes about that state, as paragraphs."""
    out: list[str] = []
    init = explain_state(traj, 0)
    items = [f"${q.latex}_{{0}} = {_inline(q.value)}$" if _indexable(q.latex)
             else f"${q.latex} = {_inline(q.value)}$" for q in init.state
             if _showable(q.value) and q.name.rsplit(".", 1)[-1] != "t"]
    if items:
        out += ["Initial state: " + ", ".join(items) + ".", ""]
    if not np.allclose(traj.points[0], w0):
        out += [f"This run starts at $w_0 = {_row_vec_tex(traj.points[0])}$.", ""]
    for note in init.notes:
        out += [text(note), ""]
    return out


# ============================================================================ Markdown


def to_markdown(
    surface: Surface, trajectories: Sequence[Trajectory], start, iterations: int = 2
) -> str:
    """A worked derivation of the first ``iterations`` steps of every run, in Markdown."""
    iterations = _check(surface, trajectories, iterations)
    w0 = np.asarray(start, dtype=float)
    out: list[str] = [
        f"# Worked derivation: the first {iterations} iteration{'s' * (iterations > 1)}",
        "",
        f"Surface: **{md_text(surface.title)}** ({md_code(surface.name)})",
        "",
        "$$",
        f"f(w_1, w_2) = {surface.latex}" if surface.latex else f"f = {surface.formula}",
        "$$",
        "",
    ]
    if surface.gradient_latex:
        out += ["$$", rf"\nabla f(w) = {surface.gradient_latex}", "$$", ""]
    out += [
        _start_point(surface, w0),
        "",
        md_text(PRECISION_NOTE),
        "",
    ]
    for n, traj in enumerate(trajectories, 1):
        spec = traj.spec.spec
        out += [f"## {n}. {md_text(spec.title)}: {md_code(str(traj.spec))}", ""]
        out += [md_text(spec.summary[:1].upper() + spec.summary[1:]) + ".", ""]
        steps = explain_steps(traj, iterations, surface)
        if steps:
            out += ["Update rule (as applied at step 1):", "", "$$", r"\begin{aligned}"]
            out += _rule_rows(steps[0])
            out += [r"\end{aligned}", "$$", ""]
        out += _hyper_lines(traj, md_code, "=")
        if spec.convention:
            out += [f"Convention: {md_text(spec.convention)}", ""]
        out += _initial_lines(traj, w0, md_text)
        for step in steps:
            out += [f"### Iteration {step.k}", "", "$$", r"\begin{aligned}"]
            out += step_block(step)
            out += [r"\end{aligned}", "$$", ""]
            out += [
                f"New point $w_{{{step.k}}} = {_row_vec_tex(step.point_after)}$, "
                f"$f(w_{{{step.k}}}) = {tex_value(step.loss_after)}$.",
                "",
            ]
            notes = [f"- ${line.lhs_latex}$: {md_text(line.note)}" for line in step.lines
                     if line.note]
            if notes:
                out += notes + [""]
        short = _short_note(traj, iterations)
        if short:
            out += [md_text(short), ""]
    out += ["## Summary", "", "| run | k | w_k | f(w_k) |", "| --- | --- | --- | --- |"]
    for traj in trajectories:
        for k in range(1, min(iterations, traj.steps) + 1):
            out.append(
                f"| {md_code(str(traj.spec))} | {k} | {fmt_value(traj.points[k], minus=MINUS)}"
                f" | {fmt(traj.losses[k], minus=MINUS)} |"
            )
    out.append("")
    return "\n".join(out)


def _indexable(latex: str) -> bool:
    """Whether a state symbol can take a _0 (it has no subscript of its own)."""
    return "_" not in latex


def _showable(value) -> bool:
    arr = np.asarray(value, dtype=object)
    return value is not None and arr.ndim <= 2 and arr.size > 0


# ============================================================================ LaTeX

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage{amsmath}
\usepackage[margin=2.2cm]{geometry}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{5pt}
\sloppy
"""


def to_latex(
    surface: Surface, trajectories: Sequence[Trajectory], start, iterations: int = 2
) -> str:
    """The same derivation as a complete LaTeX document for a plain ``pdflatex``."""
    iterations = _check(surface, trajectories, iterations)
    w0 = np.asarray(start, dtype=float)
    title = f"Worked derivation: the first {iterations} iteration{'s' * (iterations > 1)}"
    out: list[str] = [
        _PREAMBLE.rstrip("\n"),
        rf"\title{{{tex_text(title)}}}",
        r"\author{optgui}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        "",
        rf"Surface: \textbf{{{tex_text(surface.title)}}} ({tex_code(surface.name)})",
        r"\begin{align*}",
    ]
    f_tex = surface.latex or r"\text{" + tex_text(surface.formula) + "}"
    if surface.gradient_latex:
        out += [rf"f(w_1, w_2) &= {f_tex} \\", rf"\nabla f(w) &= {surface.gradient_latex}"]
    else:
        out += [rf"f(w_1, w_2) &= {f_tex}"]
    out += [
        r"\end{align*}",
        _start_point(surface, w0),
        "",
        tex_text(PRECISION_NOTE),
        "",
    ]
    for traj in trajectories:
        spec = traj.spec.spec
        out += [
            rf"\section{{{tex_text(spec.title)}}}",
            rf"Spec: {tex_code(str(traj.spec))}. "
            + tex_text(spec.summary[:1].upper() + spec.summary[1:]) + ".",
            "",
        ]
        steps = explain_steps(traj, iterations, surface)
        if steps:
            out += ["Update rule (as applied at step 1):", r"\begin{align*}"]
            out += _rule_rows(steps[0])
            out += [r"\end{align*}"]
        out += _hyper_lines(traj, tex_code, "$=$")
        if spec.convention:
            out += [r"\emph{Convention:} " + tex_text(spec.convention), ""]
        out += _initial_lines(traj, w0, tex_text)
        for step in steps:
            out += [rf"\subsection*{{Iteration {step.k}}}", r"\begin{align*}"]
            out += step_block(step)
            out += [
                r"\end{align*}",
                f"New point $w_{{{step.k}}} = {_row_vec_tex(step.point_after)}$, "
                f"$f(w_{{{step.k}}}) = {tex_value(step.loss_after)}$.",
                "",
            ]
            notes = [rf"\item ${line.lhs_latex}$: {tex_text(line.note)}"
                     for line in step.lines if line.note]
            if notes:
                out += [r"\begin{itemize}"] + notes + [r"\end{itemize}", ""]
        short = _short_note(traj, iterations)
        if short:
            out += [tex_text(short), ""]
    out += [
        r"\section*{Summary}",
        r"\begin{tabular}{p{0.42\textwidth}rll}",
        r"\hline",
        r"run & $k$ & $w_k$ & $f(w_k)$ \\",
        r"\hline",
    ]
    for traj in trajectories:
        for k in range(1, min(iterations, traj.steps) + 1):
            out.append(
                rf"{tex_code(str(traj.spec))} & {k} & ${_row_vec_tex(traj.points[k])}$ & "
                rf"${tex_value(float(traj.losses[k]))}$ \\"
            )
    out += [r"\hline", r"\end{tabular}", "", r"\end{document}", ""]
    return "\n".join(out)


__all__ = ["PRECISION_NOTE", "line_rows", "math_width", "tex_text", "to_latex", "to_markdown"]
