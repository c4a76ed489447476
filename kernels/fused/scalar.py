"""Scalar steps shared by the fused loops (inlined into them by Numba).

Each function works in the precision of its first argument: constants are cast with
``typed(x, v)``, so a float32 loop never silently widens to float64 (which would both slow it
down and change its rounding relative to the NumPy reference).
"""
import numpy as np
from numba import types
from numba.extending import overload

from .._jit import cpu_jit
from .trig import atan2_poly

__all__ = ["typed", "abrelu_entry", "abrelu_constants"]


def typed(x, v):
    """``v`` as a scalar of ``x``'s floating-point type."""
    return np.asarray(v, dtype=np.asarray(x).dtype)[()]


def _typed_f32(x, v):
    return np.float32(v)


def _typed_f64(x, v):
    return np.float64(v)


@overload(typed)
def _typed_numba(x, v):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return _typed_f32
    if isinstance(x, types.Float):
        return _typed_f64
    return None


def abrelu_constants(a, b):
    """``(A, F)`` of the ABReLU dual: A = (a^2 + b^2) / 2, F = (a - b)^2 / (2 pi)."""
    return (a * a + b * b) / 2.0, (a - b) ** 2 / (2.0 * np.pi)


@cpu_jit
def abrelu_entry(k, v12, A, F):
    """One entry of the ABReLU dual (Cho & Saul 2009, eq. 6 with n = 1; NT's ABRelu).

    ``k`` is the pre-activation covariance k12 and ``v12 = k11 * k22``. With
    ``r = sqrt(max(k11 k22 - k12^2, 0))`` and ``theta = atan2(r, k12)``:

        K'  = F r + (A - F theta) k12,      dot = E[phi'(u) phi'(v)] = A - F theta

    the same operations, in the same order, as ``kernels.activations.relu.abrelu_dual``.
    """
    r = np.sqrt(max(v12 - k * k, typed(k, 0.0)))
    th = atan2_poly(r, k)
    dot = A - F * th
    return F * r + dot * k, dot
