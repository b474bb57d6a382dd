"""Optimizers for networks: torch.optim where semantics match, the engine's rules otherwise.

Each optimizer's spec declares its ``torch.optim`` twin (a :class:`~engine.optimizers.
registry.TorchMapping`) or ``NO_TORCH``; :func:`make_torch_optimizer` uses torch's class when
there is one and :class:`EngineRuleOptimizer` otherwise, a ``torch.optim.Optimizer`` that runs
the engine's own numpy rule on the flattened parameters. torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from engine import schedules
from engine.optimizers import REGISTRY, TorchMapping, build_optimizer
from engine.spec import RunSpec

# Rules may ask the oracle for these; a network can answer all but the Hessian.
NETWORK_NEEDS = frozenset({"grad", "value", "jvp"})


def check_trainable(run: RunSpec) -> None:
    """Raise a ValueError if ``run``'s rule cannot train a network.

    Rules needing the Hessian (Newton) are refused up front: a 5×128 MLP has ~170,000
    weights, so its Hessian would have ~3·10¹⁰ entries. Any other rule is tried once on a
    small vector, which catches rules written only for two-dimensional points.
    """
    needs = set(run.spec.needs)
    if "hessian" in needs:
        raise ValueError(
            f"{run.name} needs the Hessian, which is not available for a network "
            f"(its size is the number of weights squared); choose a first-order optimizer"
        )
    if needs - NETWORK_NEEDS:
        raise ValueError(
            f"{run.name} needs {', '.join(sorted(needs - NETWORK_NEEDS))}, which a network "
            f"cannot provide; it is not usable in the training lab"
        )
    if run.resolved().get("batch", 0):
        raise ValueError(
            f"{run}: batch= picks mini-batches on 2-D data surfaces; in the training lab set "
            f"the batch size of the run instead (--batch-size)"
        )
    if torch_optimizer_args(run) is not None:
        return
    w = np.linspace(-1.0, 1.0, 5)
    try:
        with np.errstate(all="ignore"):
            opt = build_optimizer(run)
            state = opt.init(w)
            upd, _ = opt.update(w.copy(), state, w, _QuadraticOracle())
        if np.shape(upd) != w.shape:
            raise ValueError(f"its update has shape {np.shape(upd)}, expected {w.shape}")
    except Exception as exc:
        raise ValueError(f"{run} is not usable on networks: {exc}") from None


class _QuadraticOracle:
    """f(w) = ½‖w‖², used only to try a rule on a vector before a run."""

    def value(self, p):
        return 0.5 * float(np.dot(p, p))

    def grad(self, p):
        return np.asarray(p, dtype=float).copy()

    def hessian(self, p):
        raise ValueError("no Hessian for networks")

    def jvp(self, p, v):
        return float(np.dot(p, v))


def torch_optimizer_args(run: RunSpec) -> tuple[str, dict[str, Any]] | None:
    """``(torch.optim class name, kwargs)`` if torch implements ``run`` exactly, else None.

    Only explicit mappings are trusted: matching constructor arguments by name is not enough
    (``nesterov`` has torch_class SGD and SGD's arguments, yet needs ``nesterov=True``), and
    course-form RMSprop (ε inside the root) has no torch equivalent at all. A rule without
    an entry trains through the adapter, which is always exact since its arithmetic is the
    reference; gradient noise is the engine's, so a noisy spec uses the adapter too.
    """
    mapping = run.spec.torch
    values = run.resolved()
    if not isinstance(mapping, TorchMapping) or values.get("noise", 0.0):
        return None
    kwargs = mapping.kwargs(values)
    return None if kwargs is None else (mapping.cls, kwargs)


def torch_mappings() -> dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any] | None]]]:
    """Optimizer name → (torch.optim class, kwargs from resolved values) for every spec
    with a torch twin; each is checked against the adapter by tests/test_training.py."""
    return {name: (spec.torch.cls, spec.torch.kwargs) for name, spec in REGISTRY.items()
            if isinstance(spec.torch, TorchMapping)}


def make_torch_optimizer(run: RunSpec, params: Iterable[Any], *, backend: str = "auto"):
    """A ``torch.optim.Optimizer`` for ``run``: torch's own class if it matches, else the
    adapter. ``backend="engine"`` forces the adapter (tests compare the two)."""
    import torch

    if backend not in ("auto", "engine"):
        raise ValueError(f"backend must be auto or engine, got {backend!r}")
    mapped = torch_optimizer_args(run) if backend == "auto" else None
    if mapped is not None:
        cls, kwargs = mapped
        return getattr(torch.optim, cls)(params, **kwargs)
    return adapter_class()(params, run)


def make_torch_scheduler(run: RunSpec, optimizer: Any, total_steps: int):
    """torch's own ``lr_scheduler`` for a run with ``schedule=…`` (None without one), with
    ``T_max = 0`` / ``total_steps = 0`` meaning the whole training (``total_steps`` optimizer
    steps) and ``max_lr = 0`` the run's lr. The loop steps it after every optimizer step;
    the engine adapter reads its param group's ``lr`` (and ``momentum``/``betas``), so it
    follows torch's schedulers too."""
    values = run.resolved()
    kind = values.get("schedule", "none")
    if kind == "none":
        return None
    import torch

    defaults = optimizer.defaults
    kwargs = schedules.torch_kwargs(values, total_steps,
                                    "momentum" in defaults or "betas" in defaults)
    return getattr(torch.optim.lr_scheduler, schedules.TORCH_CLASSES[kind])(optimizer, **kwargs)


def backend_name(optimizer: Any) -> str:
    if type(optimizer).__name__ == "EngineRuleOptimizer":
        return f"engine rule {optimizer.run_spec.name} (adapter)"
    return f"torch.optim.{type(optimizer).__name__}"


def _make_adapter_class():
    import torch

    class EngineRuleOptimizer(torch.optim.Optimizer):
        """Train a network with one of the engine's numpy update rules.

        Each ``step`` flattens the parameters and their gradients into float64 vectors,
        calls the rule's ``update(grads, state, params, oracle)`` and writes
        ``params + updates`` back. The oracle evaluates the loss on the current batch at any
        point through the ``closure`` passed to ``step`` (torch's convention: it zeroes the
        gradients, computes the loss, calls backward and returns the loss); rules that only
        use the gradient they are given work without a closure. ``oracle.jvp`` is computed
        as ∇f·v by backprop (same value as a forward-mode pass, not its cost). The rule's
        state (a NamedTuple of numpy arrays) is kept in ``rule_state``.
        """

        def __init__(self, params, run_spec: RunSpec):
            check_trainable(run_spec)
            values = run_spec.resolved()
            own = {h.name for h in run_spec.spec.hypers}
            # the hyperparameters torch's schedulers rewrite, in torch's group layout
            defaults: dict[str, Any] = {}
            if "lr" in own:
                defaults["lr"] = values["lr"]
            if "momentum" in own:
                defaults["momentum"] = values["momentum"]
            elif "beta1" in own:
                defaults["betas"] = (values["beta1"], values.get("beta2", 0.999))
            super().__init__(params, defaults)
            self._own = own
            self._base = dict(defaults)
            self.run_spec = run_spec
            self.rule = build_optimizer(run_spec)
            self.noise = float(values.get("noise", 0.0))
            self._rng = np.random.default_rng(int(values.get("seed", 0)))
            self.rule_state: Any = None

        def _scheduled_rule(self):
            """The rule with the lr (momentum, β₁) a torch scheduler put in the group."""
            group = self.param_groups[0]
            changed: dict[str, Any] = {}
            if "lr" in self._base and group["lr"] != self._base["lr"]:
                changed["lr"] = float(group["lr"])
            if "momentum" in self._base and group["momentum"] != self._base["momentum"]:
                changed["momentum"] = float(group["momentum"])
            if "betas" in self._base and group["betas"][0] != self._base["betas"][0]:
                changed["beta1"] = float(group["betas"][0])
            return build_optimizer(self.run_spec, changed) if changed else self.rule

        def _params(self) -> list:
            return [p for group in self.param_groups for p in group["params"]]

        @torch.no_grad()
        def step(self, closure: Callable[[], Any] | None = None):
            params = self._params()
            w = _flat(params)
            g = _flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])
            oracle = _NetworkOracle(params, closure, w, self.noise, self._rng)
            if self.noise:
                g = g + self.noise * self._rng.standard_normal(g.shape)
            if self.rule_state is None:
                self.rule_state = self.rule.init(w)
            with np.errstate(all="ignore"):
                updates, self.rule_state = self._scheduled_rule().update(
                    g, self.rule_state, w, oracle)
            _assign(params, w + np.asarray(updates, dtype=np.float64))
            return None

    return EngineRuleOptimizer


def _flat(tensors: Sequence[Any]) -> np.ndarray:
    import torch

    return torch.cat([t.detach().reshape(-1) for t in tensors]).to(
        "cpu", torch.float64).numpy()


def _assign(params: Sequence[Any], vector: np.ndarray) -> None:
    import torch

    flat = torch.from_numpy(np.ascontiguousarray(vector))
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset:offset + n].view_as(p))
            offset += n


class _NetworkOracle:
    """The loss on the current batch as a function of the flattened weights."""

    def __init__(self, params, closure, w0: np.ndarray, noise: float, rng):
        self.params = params
        self.closure = closure
        self.w0 = w0
        self.noise = noise
        self.rng = rng

    def _eval(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        import torch

        if self.closure is None:
            raise ValueError("this rule re-evaluates the loss: step() needs a closure")
        _assign(self.params, np.asarray(p, dtype=np.float64))
        try:
            with torch.enable_grad():
                loss = self.closure()
            grad = _flat([q.grad if q.grad is not None else torch.zeros_like(q)
                          for q in self.params])
        finally:
            _assign(self.params, self.w0)
        return float(loss), grad

    def value(self, p):
        return self._eval(p)[0]

    def grad(self, p):
        g = self._eval(p)[1]
        if self.noise:
            g = g + self.noise * self.rng.standard_normal(g.shape)
        return g

    def hessian(self, p):
        raise ValueError("the Hessian is not available for networks")

    def jvp(self, p, v):
        return float(np.dot(self.grad(p), v))


_adapter: list[type] = []


def adapter_class() -> type:
    """The :class:`EngineRuleOptimizer` class (created, and torch imported, on first use)."""
    if not _adapter:
        _adapter.append(_make_adapter_class())
    return _adapter[0]


def __getattr__(name: str):
    # EngineRuleOptimizer subclasses torch.optim.Optimizer: built on first use so that
    # importing this module does not import torch (it is on the GUI's start-up path).
    if name == "EngineRuleOptimizer":
        return adapter_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
