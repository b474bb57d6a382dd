"""The optimizer catalogue: one module per optimizer or small family, and their registry.

=====================  ==============================================================
``registry.py``        :class:`Hyper`, :class:`OptimizerSpec`, :func:`register` (refuses an
                       incomplete spec), :data:`REGISTRY`, :func:`build_optimizer`
``sgd.py``             gd, momentum (course EMA form), sgd (torch), nesterov
``adaptive.py``        rmsprop, adagrad, adadelta, adasmooth
``adam.py``            adam (amsgrad), adamax, nadam, adabelief
``newton.py``          damped saddle-free Newton
``sharpness.py``       sam, asam (wrappers around a base optimizer)
``forward_gradient.py`` forward gradient (one JVP along a random direction)
=====================  ==============================================================

Each family module holds its optimizers' state, rule, spec, step explainer, torch mapping
and overlay velocity field. To add an optimizer, add a module to this package: it is
imported (and its specs registered) with the package.
"""

import importlib
import pkgutil

from engine.optimizers.registry import (
    COMMON_HYPERS,
    FAMILIES,
    FROM_BASE,
    NO_TORCH,
    REGISTRY,
    Hyper,
    Optimizer,
    OptimizerSpec,
    Oracle,
    TorchMapping,
    build_optimizer,
    check_complete,
    format_value,
    get_optimizer_spec,
    register,
    velocity,
)

# Importing a family module registers its optimizers: these first, in this order (the
# picker lists each family's optimizers in registration order), then every other module
# of the package in name order, so a new optimizer needs nothing but its own module.
# isort: off
from engine.optimizers import sgd, adaptive, adam, newton, sharpness, forward_gradient
# isort: on
from engine.optimizers.adaptive import effective_ratio
from engine.optimizers.forward_gradient import forward_direction

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "COMMON_HYPERS", "FAMILIES", "FROM_BASE", "NO_TORCH", "REGISTRY", "Hyper", "Optimizer",
    "OptimizerSpec", "Oracle", "TorchMapping", "adam", "adaptive", "build_optimizer",
    "check_complete", "effective_ratio", "format_value", "forward_direction",
    "forward_gradient", "get_optimizer_spec", "newton", "register", "sgd", "sharpness",
    "velocity",
]
