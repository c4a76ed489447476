"""Arc-cosine kernels: Sign and the rectified monomials phi(x) = (x >= 0) x^n.

With r = sqrt(k11 k22 - k12^2), theta = atan2(r, k12) (pi/2 when r = k12 = 0, as in Neural
Tangents) and Cho & Saul's (2009, "Kernel methods for deep learning", eq. 4-7) angular
functions scaled by (k11 k22)^(n/2), I_n = (k11 k22)^(n/2) J_n(theta):

    I_0 = pi - theta,   I_1 = r + k12 (pi - theta),
    I_n = (2n - 1) k12 I_(n-1) + (n - 1)^2 r^2 I_(n-2)                      (n >= 2)

    RectifiedMonomial(n):  E[phi(u) phi(v)] = I_n / (2 pi),
                           E[phi'(u) phi'(v)] = n^2 I_(n-1) / (2 pi)   (0 for n = 0)
    Sign:                  E[sign(u) sign(v)] = 1 - 2 theta / pi,  E[sign' sign'] := 0

The three-term recurrence is the homogeneous form of J_n = (2n-1) cos(t) J_(n-1) +
(n-1)^2 sin(t)^2 J_(n-2), which follows from Cho & Saul's derivative formula for J_n; it has no
division, so x1 == x2 (r = 0) is exact: I_n = pi (2n-1)!! k^n there, where Neural Tangents'
autodiff of arccos returns NaN. The rectified-monomial derivative is Price's theorem
(d/dk12 E[phi phi] = E[phi' phi'], and phi' = n x^(n-1) (x >= 0)).

The derivative of sign is zero almost everywhere, so the finite network's gradient through it
is zero and, as Neural Tangents does, its NTK term is 0 (the distributional E[2 delta(u)
2 delta(v)] = 2 / (pi r) is not what gradient descent on a finite network sees).

One definition each, ``sign_scalar`` and ``rectified_monomial_scalar`` (plain Python, compiled
by ``cpu_jit``): the Numba-CUDA kernels and Sign's Numba CPU loop call them (the rectified
monomials have no CPU loop: see ``RECTIFIED_MONOMIAL``). ``sign_reference``
and ``rectified_monomial_reference`` (over ``arccos_series``) state the same formulas in array
form (libm's arctan2), for the tests.
"""
import math

import numpy as np
from numba import prange

from .._jit import cpu_jit, cpu_pjit
from .._xp import get_xp
from ._launch import FastDual
from .angle import angle_reference, atan2_nonneg, sine2, sine2_reference

__all__ = ["sign_dual", "rectified_monomial_dual", "arccos_series", "sign_scalar",
           "rectified_monomial_constants", "rectified_monomial_scalar", "sign_reference",
           "rectified_monomial_reference"]


def _r_theta(k11, k12, k22):
    """``r^2``, ``r`` and ``theta``; ``r^2`` within rounding of 0 (collinear inputs, whose
    ``k11 k22 - k12^2`` cancels to ~eps k11 k22) is set to 0 (``angle.sine2``): else theta ~
    sqrt(eps) and Sign's 1 - 2 theta / pi, fed to the next Sign, grows it to ~eps^(1/4) (two
    Sign layers on 1-d float32 inputs gave 0.988 for an exact 1, and a non-PSD kernel)."""
    xp = get_xp(k12)
    r2 = sine2_reference(xp, k11, k12, k22)
    r = xp.sqrt(r2)
    return r2, r, angle_reference(xp, r, k12)


def arccos_series(k11, k12, k22, degree):
    """``[I_0, ..., I_degree]`` of the module docstring (arrays broadcast to ``k12``)."""
    r2, r, theta = _r_theta(k11, k12, k22)
    dt = k12.dtype.type
    out = [dt(np.pi) - theta]
    if degree >= 1:
        out.append(r + k12 * out[0])
    for n in range(2, degree + 1):
        out.append(dt(2 * n - 1) * k12 * out[-1] + dt((n - 1) ** 2) * r2 * out[-2])
    return out


def rectified_monomial_constants(degree):
    """``(n, n^2 / (2 pi))`` of the rectified monomial of degree n."""
    return float(degree), degree * degree / (2 * math.pi)


def rectified_monomial_reference(k11, k12, k22, want_dot, prm):
    """Array form of the rectified-monomial dual, ``prm = rectified_monomial_constants(n)``."""
    degree = int(prm[0])
    series = arccos_series(k11, k12, k22, degree)
    dt = k12.dtype.type
    nngp = series[degree] * dt(1 / (2 * math.pi))
    if not want_dot:
        return nngp, None
    if degree == 0:
        return nngp, get_xp(k12).zeros_like(nngp)
    return nngp, series[degree - 1] * dt(prm[1])


@cpu_jit
def rectified_monomial_scalar(k11, k12, k22, prm, T):
    """One entry ``(I_n / (2 pi), n^2 I_(n-1) / (2 pi))``, ``prm =
    rectified_monomial_constants(n)``; the recurrence of the module docstring."""
    n = int(prm[0])
    r2 = sine2(k11, k12, k22, T)
    r = math.sqrt(r2)
    lo = T(np.pi) - atan2_nonneg(r, k12, T)            # I_0
    if n == 0:
        return lo * T(1.0 / (2.0 * np.pi)), T(0.0)
    hi = r + k12 * lo                                  # I_1
    for m in range(2, n + 1):
        lo, hi = hi, T(2 * m - 1) * k12 * hi + T((m - 1) * (m - 1)) * r2 * lo
    return hi * T(1.0 / (2.0 * np.pi)), lo * T(prm[1])


def sign_reference(k11, k12, k22, want_dot, prm=()):
    """Array form of the Sign dual (``prm`` unused)."""
    _, _, theta = _r_theta(k11, k12, k22)
    nngp = 1 - theta * k12.dtype.type(2 / math.pi)
    return nngp, (get_xp(k12).zeros_like(nngp) if want_dot else None)


@cpu_jit
def sign_scalar(k11, k12, k22, prm, T):
    """One entry ``(1 - 2 theta / pi, 0)`` (``prm`` unused)."""
    r = math.sqrt(sine2(k11, k12, k22, T))
    return T(1.0) - atan2_nonneg(r, k12, T) * T(2.0 / np.pi), T(0.0)


@cpu_pjit
def sign_cpu(a, k, b, nngp, dot, prm):
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
                    nngp[i, j, r], dot[i, j, r] = sign_scalar(c, k[i, j, r], b[ib, jb, r],
                                                              prm, T)
            else:
                for r in range(R):
                    nngp[i, j, r], dot[i, j, r] = sign_scalar(a[ia, ja, r], k[i, j, r],
                                                              b[ib, jb, r], prm, T)


SIGN = FastDual(sign_reference, sign_cpu, sign_scalar)
# No CPU loop for the rectified monomials: the recurrence's inner loop keeps a Numba loop
# from vectorising, and it was no faster than the array form (10^6 entries, one thread,
# degree 1: 19 ms against 15 ms in float32, 24 ms against 26 ms in float64).
RECTIFIED_MONOMIAL = FastDual(rectified_monomial_reference, None, rectified_monomial_scalar)


def rectified_monomial_dual(k11, k12, k22, want_dot, degree, backend=None):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = (x >= 0) x^degree."""
    return RECTIFIED_MONOMIAL(k11, k12, k22, want_dot, rectified_monomial_constants(degree),
                              backend)


def sign_dual(k11, k12, k22, want_dot, backend=None):
    """``(1 - 2 theta / pi, 0 or None)`` for phi = sign; see the module docstring for the 0."""
    return SIGN(k11, k12, k22, want_dot, (0.0,), backend)
