"""What an optimizer's explainer works with: the step context and the lines it emits.

Each optimizer module (``engine/optimizers/*.py``) gives its spec an ``explainer(ctx)`` that
writes one recorded step out, statement by statement, with the methods of
:class:`StepContext`: ``ctx.h("beta1")`` is a hyperparameter, ``ctx.prev("m")``/``ctx.new("m")``
a state field before/after the step, ``ctx.g`` the gradient fed to the step, ``ctx.w`` the
point before it; ``ctx.emit(target, expr)`` adds the line ``target ← expr`` and
``ctx.step_to(expr)`` the final ``w ← expr``. Every line's result is the *recorded* value.
This module knows no optimizer: it imports neither the registry nor the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.explain.format import MINUS, _freeze, fmt_value, tex_symbol, tex_value
from engine.explain.tree import ADD, MUL, Call, Const, Expr, Mode, Sym

Value = Any  # float | int | bool | None | tuple[float, ...] | tuple[tuple[float, ...], ...]


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



@dataclass
class StepContext:
    """What an explainer needs for one step; it appends lines to ``lines``."""

    k: int
    run: Any  # the engine.spec.RunSpec of the rule being explained
    before: Any
    after: Any
    w: Sym  # w_{k−1}
    w_next: Any  # recorded w_k
    g: Expr  # the gradient the rule uses (g, or g_SAM inside SAM)
    surface: Any  # the engine.surfaces.Surface of the run, or None if unknown
    traj: Any  # the engine.trajectory.Trajectory being explained
    lines: list[Line]
    notes: list[str]
    # hyperparameters a schedule set for this step (lr = η_k, OneCycleLR's momentum/beta1)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Any]:
        values = self.run.resolved()
        values.update(self.overrides)
        return values

    @property
    def spec(self) -> Any:  # the run's OptimizerSpec
        return self.run.spec

    def h(self, name: str) -> Sym:
        """A hyperparameter as a leaf."""
        hyper = self.spec.hyper(name)
        symbol = hyper.symbol or name
        return Sym(name, symbol, tex_symbol(symbol), self.values[name])

    def prev(self, name: str) -> Sym:
        """A state field before the step (index k−1)."""
        sym, tex = self.spec.symbol(name)
        return Sym(name, sym, tex, _freeze(getattr(self.before, name)), when=-1)

    def new(self, name: str) -> Sym:
        """A state field after the step (index k), holding its recorded value."""
        sym, tex = self.spec.symbol(name)
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

    # ------------------------------------------------------------------ gradients

    def batch(self) -> np.ndarray | None:
        if self.values.get("batch", 0) and len(self.traj.batches) >= self.k:
            return np.asarray(self.traj.batches[self.k - 1])
        return None

    def grad_fn(self) -> Callable[[Any], Any] | None:
        """The noise-free gradient this step's oracle computes (mini-batch aware)."""
        surface = self.surface
        if surface is None:
            return None
        idx = self.batch()
        if self.values.get("batch", 0):
            if idx is None or not hasattr(surface, "batch_grad"):
                return None
            return lambda p: surface.batch_grad(p, idx)
        return surface.grad

    def clean_grad(self) -> Any:
        fn = self.grad_fn()
        if fn is not None:
            return np.asarray(fn(self.w.eval()), dtype=float)
        if not self.values.get("batch", 0):
            return self.traj.grads[self.k - 1]
        return None

    @property
    def grad_symbol(self) -> str:
        return "∇f_B" if self.values.get("batch", 0) else "∇f"

    @property
    def grad_latex(self) -> str:
        return r"\nabla f_B" if self.values.get("batch", 0) else r"\nabla f"

    def gradient_line(self, used: Any) -> Sym:
        """g_k = ∇f(w_{k−1}), or its mini-batch / noisy version, with the value fed to step k."""
        target = Sym("g", "g", "g", _freeze(used), when=0)
        noise = float(self.values.get("noise", 0) or 0)
        clean = self.clean_grad()
        fn = self.grad_fn()
        batch = self.values.get("batch", 0)
        note = f"mini-batch of {batch} sample(s)" if batch else ""
        if clean is None:
            return self.emit(target, Call(self.grad_symbol, self.grad_latex, self.w, _freeze(used)),
                             exact=False, note=note or "stochastic gradient")
        call = Call(self.grad_symbol, self.grad_latex, self.w, _freeze(clean), fn)
        if noise > 0:
            xi = Sym("xi", "ξ", r"\xi", _freeze((np.asarray(used) - clean) / noise), when=0)
            sigma = Sym("noise", "σ", r"\sigma", noise)
            note = ", ".join(filter(None, [note, "ξ ~ N(0, I): seeded Gaussian noise"]))
            return self.emit(target, call + sigma * xi, note=note)
        return self.emit(target, call, note=note)

    # ------------------------------------------------------------------ rules

    def explain_rule(self) -> None:
        """Write this context's step with its spec's explainer (or the recorded update)."""
        explainer = self.spec.explainer
        if explainer is None:
            # A rule without a detailed explainer still gets a truthful step.
            upd = Sym("update", "Δw", r"\Delta w", _freeze(np.asarray(self.w_next) - self.w.eval()))
            self.notes.append(f"no detailed explanation for {self.run.name} yet; see its rule")
            self.step_to(self.w + upd)
            return
        explainer(self)

    def explain_base(self, base_run: Any, before: Any, after: Any, g: Expr) -> None:
        """A wrapper's base rule (SAM's), stepping from the same point with gradient ``g``."""
        base = StepContext(
            k=self.k, run=base_run, before=before, after=after, w=self.w, w_next=self.w_next,
            g=g, surface=self.surface, traj=self.traj, lines=self.lines, notes=self.notes,
        )
        base.explain_rule()
