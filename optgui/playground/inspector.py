"""The step inspector: the selected run's current step written out the way the course asks.

It shows the point w_k, f(w_k) and ∇f(w_k), the update of step k twice (the rule in symbols,
then the same lines with this step's numbers substituted, ending in the new point), every
state variable after the step and the hyperparameters. All of it comes from
:mod:`engine.explain`, i.e. from the recorded trajectory: the inspector recomputes nothing,
so what it shows is exactly what the paths and the derivation export show.

Rendering is cheap but not free (a few milliseconds for the explanation plus the text
layout), so the dock only renders the step that is visible, only while it is shown, at most
once per event-loop pass while paused and at most ~30 times a second while playing; a small
cache makes stepping back and forth free.

:func:`render_page` is Qt-free (it returns HTML, plain text and Markdown), so it can be tested
and reused without widgets.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.explain import (
    MINUS,
    Line,
    Quantity,
    explain_state,
    explain_step,
    fmt,
    fmt_value,
    tex_num,
    tex_row,
    tex_value,
)
from engine.optimizers.linesearch import trials_of
from engine.trajectory import Trajectory

MONO = "'DejaVu Sans Mono', 'Noto Sans Mono', 'Menlo', 'Consolas', monospace"
TEXT = "#e8e8f0"
MUTED = "#9d9db0"
HEADING = "#c9c9ff"
CARD = "#23232d"
ERROR = "#ff6b6b"
STYLE = f"""
body {{ color: {TEXT}; font-size: 10pt; }}
.mono {{ font-family: {MONO}; }}
.sym {{ font-family: {MONO}; color: {HEADING}; white-space: pre; padding-right: 4px; }}
.eq {{ font-family: {MONO}; color: {MUTED}; }}
.num {{ font-family: {MONO}; padding-left: 4px; white-space: pre; }}
.wrap {{ font-family: {MONO}; padding-left: 4px; white-space: pre-wrap; }}
.hint {{ color: {MUTED}; font-size: 8pt; padding-left: 8px; white-space: nowrap; }}
.h {{ margin-top: 12px; margin-bottom: 3px; color: {HEADING}; font-weight: 600; }}
.sub {{ margin-top: 8px; margin-bottom: 2px; margin-left: 2px; color: {MUTED}; font-size: 9pt; }}
.note {{ margin: 4px 2px; color: {MUTED}; font-size: 9pt; }}
"""
# while playing, re-render at most 5 times a second: a page costs 15-25 ms of layout, and
# numbers changing faster than that cannot be read anyway (paused, it follows every step)
PLAY_INTERVAL_MS = 200
# a step or a selection changes the plots at once and the inspector this much later, in a
# pass of its own: its rendering (~7 ms for 8 runs × 10,000 steps) was otherwise done in
# the same pass as the contour's repaint, and made the longest stall of "to the last step"
SETTLE_MS = 20
CACHE_SIZE = 96

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(k: int) -> str:
    return str(k).translate(_SUB)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _keep_groups(text: str) -> str:
    """Non-breaking spaces inside brackets, so a long line wraps only between top-level
    terms and never inside a vector (Qt's plain-text copy turns them back into spaces)."""
    out, depth = [], 0
    for ch in text:
        if ch in "([⟨‖":
            depth += 1
        elif ch in ")]⟩" and depth:
            depth -= 1
        out.append("\u00a0" if ch == " " and depth else ch)
    return "".join(out)


def _val(v) -> str:
    """A value as the inspector shows it: 8 significant digits, typographic minus."""
    return fmt_value(v, minus=MINUS)


def _tex_inline(v) -> str:
    """A value for inline Markdown math: vectors as rows, matrices as pmatrix."""
    arr = np.asarray(v, dtype=object)
    if v is None or arr.ndim == 0:
        return tex_value(v)
    if arr.ndim == 1 and all(np.ndim(x) == 0 for x in v):
        return tex_row(v)
    return tex_value(v)


# ============================================================================ the page model


@dataclass(frozen=True)
class Row:
    """A labelled value: ``symbol = value`` with the field name as a hint."""

    symbol: str
    value: str
    latex: str = ""  # the symbol in LaTeX (for the Markdown copy); "" → text only
    value_latex: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Page:
    """One rendering of one step: what the view shows and what Copy puts on the clipboard."""

    html: str
    text: str
    markdown: str
    run_id: int | None = None
    step: int = 0  # the global step that was asked for
    index: int = 0  # the run's own step shown (clamped to what it recorded)


def _quantity_row(q: Quantity) -> Row:
    symbol = q.symbol or q.name
    hint = q.name if q.symbol and q.symbol != q.name else ""
    latex = q.latex if q.symbol else r"\mathrm{" + q.name.replace("_", r"\_") + "}"
    try:
        value_latex = _tex_inline(q.value)
    except (TypeError, ValueError):
        value_latex = r"\text{" + _val(q.value) + "}"
    if isinstance(q.value, str):
        value_latex = r"\texttt{" + q.value.replace("_", r"\_") + "}"
    return Row(symbol, _val(q.value), latex, value_latex, hint)


def render_page(
    traj: Trajectory | None,
    step: int,
    *,
    color: str = "#7fb2ff",
    max_step: int | None = None,
    run_id: int | None = None,
    error: str = "",
) -> Page:
    """The inspector page of ``traj`` at global step ``step`` (clamped to the run's steps)."""
    if traj is None:
        message = f"This run failed: {error}" if error else "Computing this run…"
        return _message_page(message, error=bool(error), run_id=run_id, step=step)
    n = traj.at(step)
    total = traj.requested_steps if max_step is None else max_step
    b = _Builder(color)
    title = traj.spec.spec.title
    b.header(title, str(traj.spec), f"step {step} / {total}")

    ended = step > traj.steps
    if traj.diverged and step >= traj.steps:
        b.banner(
            f"Diverged at step {traj.diverged_at}: {traj.diverged_reason}. "
            f"Step {traj.steps} is the last recorded point; the update of step "
            f"{traj.diverged_at} was not applied.",
            ERROR,
        )
    elif ended:
        b.banner(f"This run recorded {traj.steps} step(s); showing its last step.", MUTED)

    state = explain_state(traj, n)
    for note in state.notes:
        b.banner(note, MUTED)

    k = _sub(n)
    b.section(f"Point w{k}" + ("  (the start)" if n == 0 else ""), f"Point $w_{{{n}}}$")
    b.rows([
        Row(f"w{k}", _val(state.point), f"w_{{{n}}}", tex_row(state.point)),
        Row(f"f(w{k})", fmt(state.loss, minus=MINUS), f"f(w_{{{n}}})", tex_num(state.loss)),
        Row(f"∇f(w{k})", _val(state.gradient), rf"\nabla f(w_{{{n}}})",
            tex_row(state.gradient)),
    ])

    if n == 0:
        b.section("Update rule", "Update rule")
        if traj.steps >= 1:
            first = explain_step(traj, 1)
            b.rule_lines([(ln.rule, ln.rule_latex) for ln in first.lines])
            b.hint("Step forward (→) to see step 1 with its numbers.")
        else:
            b.rule_lines([(r, "") for r in traj.spec.spec.rule.splitlines()])
            b.hint("This run has no steps yet.")
        b.section("Initial state", "Initial state")
    else:
        ex = explain_step(traj, n)
        b.section(f"Step {n}: w{_sub(n - 1)} → w{k}", f"Step {n}: $w_{{{n - 1}}} \\to w_{{{n}}}$")
        b.sub("The rule")
        b.rule_lines([(ln.rule, ln.rule_latex) for ln in ex.lines])
        b.sub("With this step's numbers")
        b.derivation(ex.lines, n)
        b.gap()
        b.rows([Row(f"f(w{k})", fmt(ex.loss_after, minus=MINUS), f"f(w_{{{n}}})",
                    tex_num(ex.loss_after))])
        for note in ex.notes:
            if note not in state.notes:
                b.hint(note)
        _line_search_table(b, traj.states[n], n)
        b.section(f"State after step {n}", f"State after step {n}")
    if state.state:
        b.rows([_quantity_row(q) for q in state.state if q.name not in TABLE_FIELDS])
    else:
        b.hint("This optimizer keeps no state.")
    b.section("Hyperparameters", "Hyperparameters")
    b.rows([_quantity_row(q) for q in state.hypers])
    return Page(b.html(), b.text(), b.markdown(), run_id, step, n)


# State fields shown as their own table rather than as a row of numbers.
TABLE_FIELDS = ("trials",)


def _line_search_table(b: _Builder, state, n: int) -> None:
    """Step n's line search (bfgs, cg, lbfgs with strong_wolfe) as a table of its trials."""
    trials = trials_of(state)
    if not trials:
        return
    accepted = getattr(state, "step", None)
    b.sub(f"Line search of step {n}: φ(t) = f(w + t·d)")
    rows = []
    for i, tr in enumerate(trials, start=1):
        mark = "◀ accepted" if accepted is not None and tr.t == accepted else ""
        rows.append((str(i), fmt(tr.t, minus=MINUS), fmt(tr.f, minus=MINUS),
                     fmt(tr.slope, minus=MINUS), "✓" if tr.armijo else "✗",
                     "✓" if tr.curvature else "✗", mark))
    b.table(("#", "t", "φ(t)", "φ′(t)", "Armijo", "curvature", ""), rows)
    b.hint("Armijo: φ(t) ≤ φ(0) + c₁·t·φ′(0) (enough decrease); curvature: |φ′(t)| ≤ "
           "c₂·|φ′(0)| (the slope has flattened). The step is accepted where both hold.")


def _message_page(message: str, *, error: bool = False, run_id=None, step: int = 0) -> Page:
    color = ERROR if error else MUTED
    body = f'<p style="color: {color}; margin: 16px 8px;">{_esc(message)}</p>'
    return Page(_document(body), message, message, run_id, step, 0)


def _document(body: str) -> str:
    return f"<html><head><style>{STYLE}</style></head><body>{body}</body></html>"


MIN_CONTRAST = 4.5  # WCAG AA for normal text


def _luminance(color: QColor) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return (0.2126 * linear(color.redF()) + 0.7152 * linear(color.greenF())
            + 0.0722 * linear(color.blueF()))


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((_luminance(QColor(a)), _luminance(QColor(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable(color: str, background: str = CARD) -> str:
    """``color``, lightened towards white just enough to read on ``background`` (a run
    recoloured dark keeps its hue in the inspector's text instead of vanishing)."""
    base = QColor(color)
    if not base.isValid():
        return TEXT
    for step in range(11):
        t = step / 10
        mixed = QColor.fromRgbF(base.redF() + (1 - base.redF()) * t,
                                base.greenF() + (1 - base.greenF()) * t,
                                base.blueF() + (1 - base.blueF()) * t)
        if contrast(mixed.name(), background) >= MIN_CONTRAST:
            return mixed.name()
    return TEXT


class _Builder:
    """Accumulates one page as HTML, plain text and Markdown side by side."""

    def __init__(self, color: str) -> None:
        self.swatch = color  # the run's own colour, for the strip beside the title
        self.color = readable(color)  # the same hue, legible, for text
        self._html: list[str] = []
        self._text: list[str] = []
        self._md: list[str] = []

    # -------------------------------------------------------------- blocks
    def header(self, title: str, spec: str, where: str) -> None:
        c = self.color
        self._html.append(
            f'<table width="100%" cellspacing="0" cellpadding="0" bgcolor="{CARD}"><tr>'
            f'<td width="5" bgcolor="{self.swatch}"></td>'
            f'<td style="padding: 6px 8px;">'
            f'<span style="font-size: 12pt; font-weight: 600; color: {c};">{_esc(title)}</span>'
            f'<br><span class="mono" style="color: {MUTED}; font-size: 9pt;">'
            f"{_esc(spec).replace(',', ',&#8203;')}</span>"
            f'</td><td align="right" valign="middle" class="mono" style="padding: 6px 8px;">'
            f"{_esc(where)}</td></tr></table>"
        )
        self._text += [f"{title}: {spec} — {where}"]
        self._md += [f"### {title}: `{spec}` — {where}", ""]

    def banner(self, message: str, color: str) -> None:
        if color == ERROR:
            self._html.append(
                '<table width="100%" cellspacing="0" cellpadding="6" style="margin-top: 6px;">'
                f'<tr><td bgcolor="#3a2028" style="color: {ERROR};">{_esc(message)}</td>'
                "</tr></table>"
            )
        else:
            self._html.append(f'<p class="note" style="color: {color};">{_esc(message)}</p>')
        self._text.append(message)
        self._md += [f"> {message}", ""]

    def section(self, title: str, md_title: str) -> None:
        self.gap()  # Qt drops a paragraph's top margin after a table: space it explicitly
        self._html.append(f'<p class="h">{_esc(title)}</p>')
        self._text += ["", title]
        self._md += [f"**{md_title}**", ""]

    def sub(self, title: str) -> None:
        self._html.append(f'<p class="sub">{_esc(title)}</p>')
        self._text.append(f"  {title}:")
        self._md += [f"*{title}:*", ""]

    def gap(self) -> None:
        self._html.append('<p style="margin: 0; font-size: 5pt;">&nbsp;</p>')

    def hint(self, message: str) -> None:
        self._html.append(f'<p class="note">{_esc(message)}</p>')
        self._text.append(f"  ({message})")
        self._md += [f"*{message}*", ""]

    def rows(self, rows: Sequence[Row]) -> None:
        cells = []
        for r in rows:
            cells.append(
                f'<tr><td align="right" class="sym">{_esc(r.symbol)}</td>'
                f'<td class="eq">=</td><td class="num">{_esc(r.value)}</td>'
                f'<td class="hint">{_esc(r.hint)}</td></tr>'
            )
        self._html.append(
            '<table cellspacing="0" cellpadding="1" style="margin-left: 4px;">'
            + "".join(cells) + "</table>"
        )
        for r in rows:
            hint = f"    ({r.hint})" if r.hint else ""
            self._text.append(f"  {r.symbol} = {r.value}{hint}")
        items = []
        for r in rows:
            if r.latex and r.value_latex:
                item = f"- ${r.latex} = {r.value_latex}$"
            else:
                item = f"- {r.symbol} = `{r.value}`"
            items.append(item + (f" ({r.hint})" if r.hint else ""))
        self._md += items + [""]

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A small table with a header row (HTML), aligned columns (text), a pipe table
        (Markdown)."""
        head = "".join(f'<td class="hint" align="right" style="padding: 1px 6px;">{_esc(h)}'
                       "</td>" for h in headers)
        body = []
        for row in rows:
            cells = "".join(f'<td class="num" align="right" style="padding: 1px 6px;">'
                            f"{_esc(c)}</td>" for c in row)
            body.append(f"<tr>{cells}</tr>")
        self._html.append(
            '<table cellspacing="0" cellpadding="1" style="margin-left: 4px;">'
            f"<tr>{head}</tr>" + "".join(body) + "</table>"
        )
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        self._text.append("    " + "  ".join(h.rjust(w) for h, w in zip(headers, widths,
                                                                         strict=True)))
        for r in rows:
            self._text.append("    " + "  ".join(c.rjust(w) for c, w in zip(r, widths,
                                                                          strict=True)))
        self._md += ["| " + " | ".join(headers) + " |",
                     "|" + "|".join("---:" for _ in headers) + "|"]
        self._md += ["| " + " | ".join(r) + " |" for r in rows] + [""]

    def rule_lines(self, rules: Sequence[tuple[str, str]]) -> None:
        body = "<br>".join(_esc(text) for text, _ in rules)
        self._html.append(
            f'<table width="100%" cellspacing="0" cellpadding="6" bgcolor="{CARD}">'
            f'<tr><td class="mono" style="white-space: pre-wrap;">{body}</td></tr></table>'
        )
        self._text += [f"    {text}" for text, _ in rules]
        if all(tex for _, tex in rules):
            self._md += ["$$", r"\begin{aligned}"]
            self._md += [tex + (r" \\" if i < len(rules) - 1 else "")
                         for i, (_, tex) in enumerate(rules)]
            self._md += [r"\end{aligned}", "$$", ""]
        else:
            self._md += ["```"] + [text for text, _ in rules] + ["```", ""]

    def derivation(self, lines: Sequence[Line], k: int) -> None:
        """Each line as ``lhs = symbolic / = substituted / = result``, the last in colour."""
        rows_html = []
        for i, ln in enumerate(lines):
            last = i == len(lines) - 1
            parts = [ln.symbolic]
            if ln.substituted != ln.symbolic:
                parts.append(ln.substituted)
            if ln.result_text != parts[-1]:
                parts.append(ln.result_text)
            for j, part in enumerate(parts):
                final = j == len(parts) - 1
                style = ""
                if final and last:
                    style = f"color: {self.color}; font-weight: 600;"
                elif final:
                    style = "font-weight: 600;"
                pad = ' style="padding-top: 6px;"' if j == 0 and i else ""
                lhs = _esc(ln.lhs) if j == 0 else ""
                rows_html.append(
                    f'<tr><td align="right" valign="top" class="sym"{pad}>{lhs}</td>'
                    f'<td valign="top" class="eq"{pad}>=</td>'
                    f'<td valign="top" class="wrap"{pad}><span style="{style}">'
                    f"{_esc(_keep_groups(part))}</span></td></tr>"
                )
            if ln.note:
                rows_html.append(
                    f'<tr><td></td><td></td><td class="hint" style="padding-left: 4px;">'
                    f"{_esc(ln.note)}</td></tr>"
                )
        self._html.append(
            '<table cellspacing="0" cellpadding="1" style="margin-left: 4px;">'
            + "".join(rows_html) + "</table>"
        )
        self._text += [f"    {ln.text}" for ln in lines]
        self._md += ["$$", r"\begin{aligned}"]
        md_rows = []
        for ln in lines:
            parts = [ln.symbolic_latex]
            if ln.substituted_latex != ln.symbolic_latex:
                parts.append(ln.substituted_latex)
            if ln.result_latex != parts[-1]:
                parts.append(ln.result_latex)
            md_rows.append(f"{ln.lhs_latex} &= " + " = ".join(parts))
        self._md += [r + r" \\" for r in md_rows[:-1]] + md_rows[-1:]
        self._md += [r"\end{aligned}", "$$", ""]

    # -------------------------------------------------------------- output
    def html(self) -> str:
        return _document("".join(self._html))

    def text(self) -> str:
        return "\n".join(self._text).strip() + "\n"

    def markdown(self) -> str:
        return "\n".join(self._md).strip() + "\n"


# ============================================================================ the widget


class StepInspector(QWidget):
    """Follows the controller's current step and selected run; renders only when visible."""

    rendered = Signal(object)  # the Page just shown (tests and status messages use it)

    def __init__(self, ctrl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepInspector")
        self.ctrl = ctrl
        self._page: Page | None = None
        self._dirty = True
        # keys hold id(traj); each entry keeps its trajectory alive, so that id stays unique
        self._cache: OrderedDict[tuple, tuple[Page, Trajectory | None]] = OrderedDict()

        self.view = QTextBrowser()
        self.view.setObjectName("inspectorText")
        self.view.setOpenLinks(False)
        self.view.setReadOnly(True)
        self.view.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.document().setDocumentMargin(6)

        self.copy_text_action = QAction("Copy step as text", self)
        self.copy_text_action.setToolTip("Copy the whole step as plain text (Unicode)")
        self.copy_text_action.triggered.connect(self.copy_text)
        self.copy_md_action = QAction("Copy step as Markdown", self)
        self.copy_md_action.setToolTip("Copy the whole step as Markdown with $…$ LaTeX math")
        self.copy_md_action.triggered.connect(self.copy_markdown)

        self.copy_button = QToolButton()
        self.copy_button.setObjectName("inspectorCopy")
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this step as text (the arrow offers Markdown)")
        self.copy_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.copy_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        menu = QMenu(self.copy_button)
        menu.addAction(self.copy_text_action)
        menu.addAction(self.copy_md_action)
        self.copy_button.setMenu(menu)
        self.copy_button.clicked.connect(self.copy_text)

        self.status = QLabel("Follows the selected run and step")
        self.status.setProperty("role", "hint")
        self.status.setMinimumWidth(10)  # may be cut short in a narrow dock
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        top = QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 0)
        top.addWidget(self.status, 1)
        top.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)

        ctrl.stepChanged.connect(self._schedule)
        ctrl.selectionChanged.connect(self._schedule)
        ctrl.trajectoriesChanged.connect(self._schedule)
        ctrl.configChanged.connect(self._schedule)

    # -------------------------------------------------------------- updating
    def _schedule(self, *_) -> None:
        self._dirty = True
        if not self.isVisible() or self._timer.isActive():
            return  # hidden: showEvent renders; pending: that render will see the new step
        self._timer.start(PLAY_INTERVAL_MS if self.ctrl.is_playing() else SETTLE_MS)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self._dirty:
            self._timer.start(0)

    def refresh(self) -> None:
        """Render the selected run at the current step now (cached per trajectory and step)."""
        self._timer.stop()
        self._dirty = False
        page = self._current_page()
        if page is self._page:
            return
        bar = self.view.verticalScrollBar()
        scroll = bar.value()
        same_run = self._page is not None and self._page.run_id == page.run_id
        self._page = page
        self.view.setHtml(page.html)
        if same_run:
            bar.setValue(scroll)  # keep the reader's place while stepping
        self.rendered.emit(page)

    def _current_page(self) -> Page:
        ctrl = self.ctrl
        rid = ctrl.selected_run
        entry = ctrl.config.run(rid) if rid is not None else None
        if entry is None:
            return _message_page("Select a run in the Setup panel to inspect its steps.")
        traj = ctrl.trajectory(rid)
        key = (rid, id(traj), ctrl.step, entry.color, ctrl.max_step, ctrl.error(rid))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit[0]
        try:
            page = render_page(traj, ctrl.step, color=entry.color, max_step=ctrl.max_step,
                               run_id=rid, error=ctrl.error(rid))
        except Exception as exc:  # noqa: BLE001 - an explanation bug must not break the app
            page = _message_page(f"Could not explain this step: {exc}", error=True,
                                 run_id=rid, step=ctrl.step)
        self._cache[key] = (page, traj)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return page

    @property
    def page(self) -> Page | None:
        return self._page

    # -------------------------------------------------------------- copying
    def _ensure_current(self) -> Page:
        if self._dirty or self._page is None:
            self.refresh()
        return self._page

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self._ensure_current().text)

    def copy_markdown(self) -> None:
        QGuiApplication.clipboard().setText(self._ensure_current().markdown)

    def _context_menu(self, pos) -> None:
        menu = self.view.createStandardContextMenu(pos)
        menu.addSeparator()
        menu.addAction(self.copy_text_action)
        menu.addAction(self.copy_md_action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()
