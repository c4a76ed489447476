"""Erf: phi(x) = a erf(b x) + c (``Sigmoid_like`` is a = 1/2, b = 1/2.4020563531719796, c = 1/2).

With D = (1 + 2 b^2 k11)(1 + 2 b^2 k22) - 4 b^4 k12^2 (Williams 1997, "Computing with
infinite networks", eq. 11, written with atan2 as Neural Tangents' ``Erf`` does; the derivative
by Price's theorem, d/dk12 of the first line):

    E[phi(u) phi(v)]   = a^2 (2 / pi) atan2(2 b^2 k12, sqrt(D)) + c^2
    E[phi'(u) phi'(v)] = a^2 b^2 (4 / pi) / sqrt(D)

D >= 1 + 2 b^2 (sqrt(k11) - sqrt(k22))^2 >= 1 for any covariance, so nothing here can divide
by zero (E[erf(b u)] = 0 makes c enter only as c^2). D is evaluated as
1 + 2 b^2 (k11 + k22) + 4 b^4 max(k11 k22 - k12^2, 0): expanding the product first would
cancel catastrophically for large variances in float32 and could make D <= 0.

One definition, ``erf_scalar`` (plain Python, compiled by ``cpu_jit``), with the constants
folded once on the host (``erf_constants``): the Numba CPU loop, the Numba-CUDA kernel and the
fused CUDA block (``cuda.duals.dual_dev``) call it. ``erf_reference`` states the same formula
in array form (libm's arctan2), for the tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from .angle import atan2_signed

__all__ = ["erf_dual", "erf_constants", "erf_reference", "erf_scalar"]


def erf_constants(a, b, c):
    """``(2 a^2 / pi, q = 2 b^2, c^2, 4 a^2 b^2 / pi)``: E[phi phi] = p0 atan2(q k12, sqrt D)
    + p2, E[phi' phi'] = p3 / sqrt D, sqrt D = sqrt(1 + q (k11 + k22) + q^2 max(k11 k22 -
    k12^2, 0))."""
    a, b, c = float(a), float(b), float(c)
    return 2 * a * a / math.pi, 2 * b * b, c * c, 4 * a * a * b * b / math.pi


@cpu_jit
def erf_scalar(k11, k12, k22, prm, T):
    """One entry ``(E[phi phi], E[phi' phi'])`` of the Erf dual, ``prm = erf_constants(a, b,
    c)``; see the module docstring."""
    q = T(prm[1])
    root = math.sqrt(T(1.0) + q * (k11 + k22) + q * q * max(k11 * k22 - k12 * k12, T(0.0)))
    return T(prm[0]) * atan2_signed(q * k12, root, T) + T(prm[2]), T(prm[3]) / root


def erf_reference(k11, k12, k22, want_dot, prm):
    """Array form (NumPy/CuPy) of the Erf dual, ``prm = erf_constants(a, b, c)``."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    q = dt(prm[1])
    root = xp.sqrt(1 + q * (k11 + k22) + q * q * xp.maximum(k11 * k22 - k12 * k12, dt(0)))
    nngp = dt(prm[0]) * xp.arctan2(q * k12, root) + dt(prm[2])
    return nngp, (dt(prm[3]) / root if want_dot else None)


@cpu_pjit
def erf_cpu(a, k, b, nngp, dot, prm):
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
                    nngp[i, j, r], dot[i, j, r] = erf_scalar(c, k[i, j, r], b[ib, jb, r], prm, T)
            else:
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = erf_scalar(a[ia, ja, r], k[i, j, r],
                                                             b[ib, jb, r], prm, T)


ERF = FastDual(erf_reference, erf_cpu, erf_scalar)


def erf_dual(k11, k12, k22, want_dot, a, b, c, backend=None):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)] or None)`` for phi(x) = a erf(b x) + c."""
    return ERF(k11, k12, k22, want_dot, erf_constants(a, b, c), backend)
