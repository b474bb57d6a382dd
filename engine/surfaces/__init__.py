"""Surfaces: f(w1, w2) with gradient and Hessian, vectorized over points of shape (..., 2).

==================  =================================================================
``base.py``         :class:`Surface`, what the optimizers, plots and explanations use
``builtin.py``      the closed-form test surfaces (:data:`SURFACES`, :func:`get_surface`)
``datasets.py``     surfaces built from a data set (linear regression, with mini-batches)
``expression.py``   the safe expression language for custom surfaces (sympy; import it
                    only when needed)
==================  =================================================================
"""

from engine.surfaces.base import Surface
from engine.surfaces.builtin import SURFACES, get_surface
from engine.surfaces.datasets import LinearRegressionSurface, make_linear_regression

__all__ = ["SURFACES", "LinearRegressionSurface", "Surface", "get_surface",
           "make_linear_regression"]
