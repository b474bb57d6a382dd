"""optgui's compute engine: surfaces, optimizers, trajectories, training.

Pure numpy (and torch, loaded lazily where training needs it). Never imports Qt, so
everything here is usable from scripts and tests::

    >>> from engine import get_surface, parse_spec, run_trajectory
    >>> traj = run_trajectory(get_surface("quadratic"), parse_spec("gd(lr=0.4)"), (-5, -2), 30)
    >>> traj.points[1].tolist()
    [-4.6, 1.2000000000000002]
"""

from engine.functions import SURFACES, Surface, get_surface
from engine.optimizers import REGISTRY, OptimizerSpec, build_optimizer, get_optimizer_spec
from engine.spec import RunSpec, parse_spec
from engine.trajectory import Trajectory, run_trajectory

__all__ = [
    "REGISTRY",
    "SURFACES",
    "OptimizerSpec",
    "RunSpec",
    "Surface",
    "Trajectory",
    "build_optimizer",
    "get_optimizer_spec",
    "get_surface",
    "parse_spec",
    "run_trajectory",
]
