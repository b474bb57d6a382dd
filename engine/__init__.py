"""optgui's compute engine: surfaces, optimizers, trajectories, training.

Pure numpy (and torch, loaded lazily where training needs it). Never imports Qt, so
everything here is usable from scripts and tests::

    >>> from engine import get_surface, parse_spec, run_trajectory
    >>> traj = run_trajectory(get_surface("quadratic"), parse_spec("gd(lr=0.4)"), (-5, -2), 30)
    >>> traj.points[1].tolist()
    [-4.6, 1.2000000000000002]

Layout: ``optimizers/`` (the registry and one module per optimizer family), ``surfaces/``
(closed-form and data-set surfaces, the expression language), ``explain/`` (step
explanations and derivations), ``training/`` (the network lab), and at the top level
``spec`` (spec strings), ``trajectory`` (runs), ``presets`` and ``export``.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from engine.optimizers import REGISTRY, OptimizerSpec, build_optimizer, get_optimizer_spec
from engine.spec import RunSpec, parse_spec
from engine.surfaces import SURFACES, Surface, get_surface
from engine.trajectory import (
    BatchCancelled,
    BatchResult,
    Trajectory,
    run_batch,
    run_trajectory,
)

# Modules that moved into packages, under their old names: ``import engine.data`` gives the
# very module object ``engine.training.data`` (so patching one patches the other). Scripts
# written against the old layout keep working, and nothing is imported until asked for.
MOVED = {
    "engine.functions": "engine.surfaces",
    "engine.expression": "engine.surfaces.expression",
    "engine.data": "engine.training.data",
    "engine.derivation": "engine.explain.derivation",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

__all__ = [
    "REGISTRY",
    "BatchCancelled",
    "BatchResult",
    "SURFACES",
    "OptimizerSpec",
    "RunSpec",
    "Surface",
    "Trajectory",
    "build_optimizer",
    "get_optimizer_spec",
    "get_surface",
    "parse_spec",
    "run_batch",
    "run_trajectory",
]
