"""Dual activations: closed-form E[phi(u)phi(v)] and E[phi'(u)phi'(v)] per nonlinearity.

Public entry points (each ``(k11, k12, k22, want_dot, *params) -> (nngp, dot or None)``, with
``k11``/``k22`` broadcasting against ``k12``); the formula and its source are in each module's
docstring. Every dual but the polynomial and numerical ones is written once as a scalar
``*_scalar(k11, k12, k22, prm, T)`` compiled by ``cpu_jit``, which the Numba CPU loops, the
Numba-CUDA kernels (``_cuda``) and the fused engines call; the ``*_reference`` array form
beside it states the same formula for the tests (docs/activations.md has the table). The
angle of the arc-cosine duals is ``angle.atan2_nonneg``. Importing this package never imports
numba.cuda.
"""
from .relu import abrelu_dual
from .erf import erf_dual
from .gelu import gelu_dual
from .trig import sin_dual, cos_dual, rbf_dual
from .exp import exp_dual, gaussian_dual
from .arccos import sign_dual, rectified_monomial_dual
from .polynomial import polynomial_dual, polynomial_matrix, hermite_coefficients
from .numerical import numerical_dual

__all__ = ["abrelu_dual", "erf_dual", "gelu_dual", "sin_dual", "cos_dual", "rbf_dual",
           "exp_dual", "gaussian_dual", "sign_dual", "rectified_monomial_dual",
           "polynomial_dual", "polynomial_matrix", "hermite_coefficients", "numerical_dual"]
