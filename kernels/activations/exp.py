"""Exp: phi(x) = a exp(b x); Gaussian: phi(x) = a exp(b x^2).

Exp, from the moment generating function E[exp(w)] = exp(Var(w) / 2) (Neural Tangents'
``Exp``; the derivative is Price's theorem, d/dk12 of the first line):

    E[phi(u) phi(v)]   = a^2 exp(b^2 (k11 + k22 + 2 k12) / 2)
    E[phi'(u) phi'(v)] = a^2 b^2 exp(b^2 (k11 + k22 + 2 k12) / 2)

Gaussian, from the Gaussian integral of exp(b (u^2 + v^2)) against the bivariate normal density
(Neural Tangents' ``Gaussian``; Price's theorem for the derivative), with
D = (1 - 2 b k11)(1 - 2 b k22) - 4 b^2 k12^2:

    E[phi(u) phi(v)]   = a^2 / sqrt(D)
    E[phi'(u) phi'(v)] = 4 a^2 b^2 k12 / D^(3/2)

For b > 0 the expectations are finite only while 4 b k11 < 1 and 4 b k22 < 1 (then D > 0);
the ``Gaussian`` layer checks this on the variances before calling these functions.

One definition each, ``exp_scalar`` and ``gaussian_scalar`` (plain Python, compiled by
``cpu_jit``): the Numba-CUDA kernels and Gaussian's Numba CPU loop call them (Exp has no CPU
loop: see ``EXP``). ``exp_reference`` and
``gaussian_reference`` state the same formulas in array form, for the tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from .angle import sine2, sine2_reference

__all__ = ["exp_dual", "gaussian_dual", "exp_constants", "gaussian_constants", "exp_scalar",
           "gaussian_scalar", "exp_reference", "gaussian_reference"]


def exp_constants(a, b):
    """``(a^2, b^2 / 2, a^2 b^2)`` of the Exp dual."""
    a, b = float(a), float(b)
    return a * a, b * b / 2, a * a * b * b


@cpu_jit
def exp_scalar(k11, k12, k22, prm, T):
    """One entry ``(E[phi phi], E[phi' phi'])`` of Exp, ``prm = exp_constants(a, b)``."""
    e = math.exp(T(prm[1]) * (k11 + k22 + T(2.0) * k12))
    return T(prm[0]) * e, T(prm[2]) * e


def exp_reference(k11, k12, k22, want_dot, prm):
    """Array form (NumPy/CuPy) of the Exp dual, ``prm = exp_constants(a, b)``."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    e = xp.exp(dt(prm[1]) * (k11 + k22 + dt(2) * k12))
    return dt(prm[0]) * e, (dt(prm[2]) * e if want_dot else None)


def gaussian_constants(a, b):
    """``(a^2, 2 b, 4 b^2, 4 a^2 b^2)`` of the Gaussian dual."""
    a, b = float(a), float(b)
    return a * a, 2 * b, 4 * b * b, 4 * a * a * b * b


@cpu_jit
def gaussian_scalar(k11, k12, k22, prm, T):
    """One entry ``(a^2 / sqrt D, 4 a^2 b^2 k12 / D^(3/2))``, ``prm = gaussian_constants(a,
    b)``, with D = 1 - 2 b (k11 + k22) + 4 b^2 r^2 and r^2 = k11 k22 - k12^2 set to 0 within
    rounding of collinear inputs (``angle.sine2``: the expanded product cancelled ~eps k^2 of
    D ~ 4 |b| k for large, collinear inputs; float32, k ~ 6e4: a non-PSD kernel)."""
    det = T(1.0) - T(prm[1]) * (k11 + k22) + T(prm[2]) * sine2(k11, k12, k22, T)
    root = math.sqrt(det)
    return T(prm[0]) / root, T(prm[3]) * k12 / (det * root)


def gaussian_reference(k11, k12, k22, want_dot, prm):
    """Array form (NumPy/CuPy) of the Gaussian dual, ``prm = gaussian_constants(a, b)``."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    det = 1 - dt(prm[1]) * (k11 + k22) + dt(prm[2]) * sine2_reference(xp, k11, k12, k22)
    root = xp.sqrt(det)
    nngp = dt(prm[0]) / root
    if not want_dot:
        return nngp, None
    return nngp, dt(prm[3]) * k12 / (det * root)


@cpu_pjit
def gaussian_cpu(a, k, b, nngp, dot, prm):
    """Numba CPU loop over ``canonical3`` operands (see ``_launch``)."""
    T = k.dtype.type
    P, Q, R = k.shape
    for i0 in prange(P):
        i = np.int64(i0)
        ia, ib = min(i, a.shape[0] - 1), min(i, b.shape[0] - 1)
        for j in range(Q):
            ja, jb = min(j, a.shape[1] - 1), min(j, b.shape[1] - 1)
            for r in range(R):
                nngp[i, j, r], dot[i, j, r] = gaussian_scalar(
                    a[ia, ja, min(r, a.shape[2] - 1)], k[i, j, r], b[ib, jb, r], prm, T)


# No CPU loop for Exp: NumPy's SIMD exp beats a Numba loop over libm's exp (10^6 entries, one
# thread: 1.1 ms against 4.0 ms in float32, 10 ms against 8.7 ms in float64).
EXP = FastDual(exp_reference, None, exp_scalar)
GAUSSIAN = FastDual(gaussian_reference, gaussian_cpu, gaussian_scalar)


def exp_dual(k11, k12, k22, want_dot, a, b, backend=None):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a exp(b x)."""
    return EXP(k11, k12, k22, want_dot, exp_constants(a, b), backend)


def gaussian_dual(k11, k12, k22, want_dot, a, b, backend=None):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a exp(b x^2)."""
    return GAUSSIAN(k11, k12, k22, want_dot, gaussian_constants(a, b), backend)
