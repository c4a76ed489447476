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
"""
import math

import numpy as np

from .._xp import get_xp
from .angle import angle_reference

__all__ = ["sign_dual", "rectified_monomial_dual", "arccos_series"]


def _r_theta(k11, k12, k22):
    """``r^2``, ``r`` and ``theta``; ``r^2`` within rounding of 0 (collinear inputs, whose
    ``k11 k22 - k12^2`` cancels to ~eps k11 k22) is set to 0: else theta ~ sqrt(eps) and
    Sign's 1 - 2 theta / pi, fed to the next Sign, grows it to ~eps^(1/4) (two Sign layers on
    1-d float32 inputs gave 0.988 for an exact 1, and a non-PSD kernel)."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    prod = k11 * k22
    r2 = k11 * k22 - k12 * k12
    r2 = xp.where(r2 <= dt(4 * np.finfo(k12.dtype).eps) * prod, dt(0), r2)
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


def rectified_monomial_dual(k11, k12, k22, want_dot, degree):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = (x >= 0) x^degree."""
    series = arccos_series(k11, k12, k22, degree)
    dt = k12.dtype.type
    nngp = series[degree] * dt(1 / (2 * math.pi))
    if not want_dot:
        return nngp, None
    if degree == 0:
        return nngp, get_xp(k12).zeros_like(nngp)
    return nngp, series[degree - 1] * dt(degree * degree / (2 * math.pi))


def sign_dual(k11, k12, k22, want_dot):
    """``(1 - 2 theta / pi, 0 or None)`` for phi = sign; see the module docstring for the 0."""
    _, _, theta = _r_theta(k11, k12, k22)
    nngp = 1 - theta * k12.dtype.type(2 / math.pi)
    return nngp, (get_xp(k12).zeros_like(nngp) if want_dot else None)
