"""The ABReLU family: phi(x) = a min(x, 0) + b max(x, 0) (ReLU: a=0, b=1; |x|: a=-1, b=1).

With r = sqrt(k11 k22 - k12^2) and theta = atan2(r, k12) (Cho & Saul 2009, eq. 6 with n = 1
and its n = 0 case for the derivative; Neural Tangents' ``ABRelu``):

    E[phi(u) phi(v)]   = (a - b)^2 / (2 pi) * r + ((a^2 + b^2) / 2 - (a - b)^2 / (2 pi) theta) k12
    E[phi'(u) phi'(v)] = (a^2 + b^2) / 2 - (a - b)^2 / (2 pi) theta

A zero variance gives r = k12 = 0, where theta is taken as pi/2 (as Neural Tangents does).
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from ._scalar import atan2_nonneg

__all__ = ["abrelu_dual", "abrelu_reference", "abrelu_scalar", "angle_reference"]


def angle_reference(xp, r, k12):
    """theta = atan2(r, k12) in [0, pi] for r >= 0, with atan2(0, 0) = pi/2 (NT's fill)."""
    theta = xp.arctan2(r, k12)
    return xp.where((r == 0) & (k12 == 0), k12.dtype.type(np.pi / 2), theta)


def abrelu_reference(k11, k12, k22, want_dot, prm):
    """Reference (NumPy/CuPy) ABReLU dual, ``prm = (a, b)``; see the module docstring."""
    a, b = prm
    xp = get_xp(k12)
    dt = k12.dtype.type
    r = xp.sqrt(xp.maximum(k11 * k22 - k12 * k12, dt(0)))
    theta = angle_reference(xp, r, k12)
    factor = dt((a - b) ** 2 / (2 * np.pi))
    dot = dt((a * a + b * b) / 2) - factor * theta
    return factor * r + dot * k12, (dot if want_dot else None)


@cpu_jit
def abrelu_scalar(k11, k12, k22, prm, T):
    """One entry ``(E[phi phi], E[phi' phi'])`` of the ABReLU dual, ``prm = (a, b)``."""
    a, b = T(prm[0]), T(prm[1])
    r = math.sqrt(max(k11 * k22 - k12 * k12, T(0.0)))
    factor = (a - b) * (a - b) * T(1.0 / (2.0 * np.pi))
    dot = (a * a + b * b) * T(0.5) - factor * atan2_nonneg(r, k12, T)
    return factor * r + dot * k12, dot


@cpu_pjit
def abrelu_cpu(a, k, b, nngp, dot, prm):
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
                    nngp[i, j, r], dot[i, j, r] = abrelu_scalar(c, k[i, j, r], b[ib, jb, r],
                                                                prm, T)
            else:
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = abrelu_scalar(a[ia, ja, r], k[i, j, r],
                                                                b[ib, jb, r], prm, T)



ABRELU = FastDual(abrelu_reference, abrelu_cpu, abrelu_scalar)


def abrelu_dual(k11, k12, k22, want_dot, a, b, backend=None):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)] or None)`` for phi = ABReLU(a, b).

    ``k11``/``k22`` broadcast against ``k12``; see the module docstring for the formula.
    Large NumPy inputs run the Numba loop, CuPy inputs the CUDA kernel; ``backend`` forces one
    of ``'reference'``, ``'cpu'``, ``'cuda'``.
    """
    return ABRELU(k11, k12, k22, want_dot, (a, b), backend)
