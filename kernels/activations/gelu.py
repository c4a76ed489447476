"""Gelu: phi(x) = x Phi(x), Phi the standard normal CDF.

With D^2 = (1 + k11)(1 + k22) - k12^2 and A = atan2(k12, D) (Tsuchida et al. 2021, "Avoiding
kernel fixed points: computing with ELU and GELU infinite networks", AAAI, Theorem 2; the
derivative by Price's theorem, d/dk12 of the first line; both as in Neural Tangents' ``Gelu``):

    E[phi(u) phi(v)]   = k12 / 4 + (k12 A + (k12^2 + k11 k22 D^2) / ((1 + k11)(1 + k22) D)) / (2 pi)
    E[phi'(u) phi'(v)] = 1/4 + A / (2 pi)
                         + k12 / (2 pi D) (1 / D^2 + (1 - k11 k22) / ((1 + k11)(1 + k22)) + 1)

D^2 >= 1 for any covariance. The kernel is that of the exact Gelu; ``Gelu(approximate=True)``
changes only the finite network (as in Neural Tangents).

One definition, ``gelu_scalar`` (plain Python, compiled by ``cpu_jit``): the Numba CPU loop
and the Numba-CUDA kernel call it. ``gelu_reference`` states the same formula in array form
(libm's arctan2), for the tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from .angle import atan2_signed

__all__ = ["gelu_dual", "gelu_reference", "gelu_scalar"]


def gelu_reference(k11, k12, k22, want_dot, prm=()):
    """Array form (NumPy/CuPy) of the Gelu dual (``prm`` unused)."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    p1 = (1 + k11) * (1 + k22)
    d2 = p1 - k12 * k12
    d = xp.sqrt(d2)
    ang = xp.arctan2(k12, d)
    inv2pi = dt(1 / (2 * math.pi))
    nngp = k12 * dt(0.25) + (k12 * ang + (k12 * k12 + k11 * k22 * d2) / (p1 * d)) * inv2pi
    if not want_dot:
        return nngp, None
    dot = dt(0.25) + ang * inv2pi + k12 * inv2pi / d * (1 / d2 + (1 - k11 * k22) / p1 + 1)
    return nngp, dot


@cpu_jit
def gelu_scalar(k11, k12, k22, prm, T):
    """One entry ``(E[phi phi], E[phi' phi'])`` of the Gelu dual (``prm`` unused); see the module
    docstring."""
    p1 = (T(1.0) + k11) * (T(1.0) + k22)
    d2 = p1 - k12 * k12
    d = math.sqrt(d2)
    ang = atan2_signed(k12, d, T)
    inv2pi = T(1.0 / (2.0 * math.pi))
    nngp = k12 * T(0.25) + (k12 * ang + (k12 * k12 + k11 * k22 * d2) / (p1 * d)) * inv2pi
    dot = T(0.25) + ang * inv2pi + k12 * inv2pi / d * (
        T(1.0) / d2 + (T(1.0) - k11 * k22) / p1 + T(1.0))
    return nngp, dot


@cpu_pjit
def gelu_cpu(a, k, b, nngp, dot, prm):
    """Numba CPU loop over ``canonical3`` operands (see ``_launch``)."""
    T = k.dtype.type
    P, Q, R = k.shape
    for i0 in prange(P):
        i = np.int64(i0)
        ia, ib = min(i, a.shape[0] - 1), min(i, b.shape[0] - 1)
        for j in range(Q):
            ja, jb = min(j, a.shape[1] - 1), min(j, b.shape[1] - 1)
            if a.shape[2] == 1:
                c = a[ia, ja, 0]
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = gelu_scalar(c, k[i, j, r], b[ib, jb, r], prm, T)
            else:
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = gelu_scalar(a[ia, ja, r], k[i, j, r],
                                                              b[ib, jb, r], prm, T)


GELU = FastDual(gelu_reference, gelu_cpu, gelu_scalar)


def gelu_dual(k11, k12, k22, want_dot, backend=None):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)] or None)`` for phi(x) = x Phi(x)."""
    return GELU(k11, k12, k22, want_dot, (0.0,), backend)
