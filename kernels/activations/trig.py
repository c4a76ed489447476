"""Sin, Cos and Rbf: phi(x) = a sin(b x + c); Cos is c + pi/2; Rbf(gamma) is
phi(x) = sqrt(2) sin(sqrt(2 gamma) x + pi/4).

From sin(s) sin(t) = (cos(s - t) - cos(s + t)) / 2 and E[cos(w)] = exp(-Var(w) / 2) for a
centred Gaussian w (Rahimi & Recht 2007 for the Rbf case; Neural Tangents' ``Sin``/``Rbf``):

    s1 = exp(-b^2 (k11 + k22 - 2 k12) / 2),   s2 = cos(2c) exp(-b^2 (k11 + k22 + 2 k12) / 2)
    E[phi(u) phi(v)]   = a^2 / 2 (s1 - s2)
    E[phi'(u) phi'(v)] = a^2 b^2 / 2 (s1 + s2)

Both exponents are <= 0, so nothing overflows. One definition, ``trig_scalar`` (plain Python,
compiled by ``cpu_jit``), serves the three layers with ``prm = trig_constants(a^2, b^2,
cos 2c)``; Rbf passes cos 2c = 0 exactly, giving exp(-gamma (k11 + k22 - 2 k12)) and 2 gamma
times it. The Numba CPU loop and the Numba-CUDA kernel call it; ``trig_reference`` states the
same formula in array form, for the tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual

__all__ = ["sin_dual", "cos_dual", "rbf_dual", "trig_constants", "trig_reference",
           "trig_scalar"]


def trig_constants(a2, b2, cos2c):
    """``(a^2 / 2, b^2, cos 2c, a^2 b^2 / 2)`` from ``(a^2, b^2, cos 2c)``."""
    a2, b2, cos2c = float(a2), float(b2), float(cos2c)
    return a2 / 2, b2, cos2c, a2 * b2 / 2


@cpu_jit
def trig_scalar(k11, k12, k22, prm, T):
    """One entry ``(E[phi phi], E[phi' phi'])``, ``prm = trig_constants(a^2, b^2, cos 2c)``;
    see the module docstring."""
    b2 = T(prm[1])
    half = -b2 * T(0.5) * (k11 + k22)
    s1 = math.exp(min(half + b2 * k12, T(0.0)))   # <= 0 exactly: see trig_reference
    s2 = math.exp(half - b2 * k12) * T(prm[2])
    return T(prm[0]) * (s1 - s2), T(prm[3]) * (s1 + s2)


def trig_reference(k11, k12, k22, want_dot, prm):
    """Array form (NumPy/CuPy) of the dual, ``prm = trig_constants(a^2, b^2, cos 2c)``."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    b2 = dt(prm[1])
    half = -b2 * dt(0.5) * (k11 + k22)
    # -b^2 (k11 + k22 - 2 k12) / 2 <= 0 exactly (Cauchy-Schwarz); rounding of large variances
    # made it positive and E[phi phi] exceed its bound (float32 Sin after Hermite: 0.504 > 0.5)
    s1 = xp.exp(xp.minimum(half + b2 * k12, dt(0)))
    s2 = xp.exp(half - b2 * k12) * dt(prm[2]) if prm[2] != 0 else None
    nngp = dt(prm[0]) * (s1 if s2 is None else s1 - s2)
    if not want_dot:
        return nngp, None
    return nngp, dt(prm[3]) * (s1 if s2 is None else s1 + s2)


@cpu_pjit
def trig_cpu(a, k, b, nngp, dot, prm):
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
                    nngp[i, j, r], dot[i, j, r] = trig_scalar(c, k[i, j, r], b[ib, jb, r], prm, T)
            else:
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = trig_scalar(a[ia, ja, r], k[i, j, r],
                                                              b[ib, jb, r], prm, T)


TRIG = FastDual(trig_reference, trig_cpu, trig_scalar)


def sin_dual(k11, k12, k22, want_dot, a, b, c, backend=None):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a sin(b x + c)."""
    return TRIG(k11, k12, k22, want_dot, trig_constants(a * a, b * b, math.cos(2 * c)),
                backend)


def cos_dual(k11, k12, k22, want_dot, a, b, c, backend=None):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a cos(b x + c), i.e. Sin with the
    phase c + pi/2."""
    return TRIG(k11, k12, k22, want_dot, trig_constants(a * a, b * b, -math.cos(2 * c)),
                backend)


def rbf_dual(k11, k12, k22, want_dot, gamma, backend=None):
    """``(exp(-gamma (k11 + k22 - 2 k12)), 2 gamma exp(...) or None)``: the Rbf dual."""
    return TRIG(k11, k12, k22, want_dot, trig_constants(2.0, 2.0 * gamma, 0.0), backend)
