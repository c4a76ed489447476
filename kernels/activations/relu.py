"""The ABReLU family: phi(x) = a min(x, 0) + b max(x, 0) (ReLU: a=0, b=1; |x|: a=-1, b=1).

With r = sqrt(k11 k22 - k12^2) and theta = atan2(r, k12) (Cho & Saul 2009, eq. 6 with n = 1
and its n = 0 case for the derivative; Neural Tangents' ``ABRelu``), A = (a^2 + b^2) / 2 and
F = (a - b)^2 / (2 pi):

    E[phi(u) phi(v)]   = F r + (A - F theta) k12
    E[phi'(u) phi'(v)] = A - F theta

A zero variance gives r = k12 = 0, where theta is taken as pi/2 (as Neural Tangents does).

One definition, ``abrelu_core`` (the formula in plain Python, compiled by ``cpu_jit``); the
Numba CPU loop ``abrelu_cpu``, the Numba-CUDA kernel (``_cuda.dual_kernel``), the fused CPU
chains (``fused.scalar.abrelu_entry``) and the fused CUDA block (``cuda.duals.dual_dev``) all
call it. ``abrelu_reference`` states the same formula in array form (libm's arctan2), for the
tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from .angle import angle_reference, atan2_nonneg

__all__ = ["abrelu_dual", "abrelu_constants", "abrelu_core", "abrelu_scalar",
           "abrelu_reference"]


def abrelu_constants(a, b):
    """``(A, F)`` of the module docstring: A = (a^2 + b^2) / 2, F = (a - b)^2 / (2 pi)."""
    a, b = float(a), float(b)
    return (a * a + b * b) / 2.0, (a - b) ** 2 / (2.0 * np.pi)


@cpu_jit
def abrelu_core(k12, v12, A, F, T):
    """``(E[phi phi], E[phi' phi'])`` of one entry, ``v12 = k11 k22`` (all ABReLU needs of the
    variances), ``A``/``F`` of ``abrelu_constants`` in the float type ``T``."""
    r = math.sqrt(max(v12 - k12 * k12, T(0.0)))
    dot = A - F * atan2_nonneg(r, k12, T)
    return F * r + dot * k12, dot


@cpu_jit
def abrelu_scalar(k11, k12, k22, prm, T):
    """The dual scalar interface ``(k11, k12, k22, prm, T)`` of ``abrelu_core``,
    ``prm = abrelu_constants(a, b)``."""
    return abrelu_core(k12, k11 * k22, T(prm[0]), T(prm[1]), T)


def abrelu_reference(k11, k12, k22, want_dot, prm):
    """Array form (NumPy/CuPy) of the dual, ``prm = abrelu_constants(a, b)``."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    A, F = dt(prm[0]), dt(prm[1])
    r = xp.sqrt(xp.maximum(k11 * k22 - k12 * k12, dt(0)))
    dot = A - F * angle_reference(xp, r, k12)
    return F * r + dot * k12, (dot if want_dot else None)


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
    return ABRELU(k11, k12, k22, want_dot, abrelu_constants(a, b), backend)
