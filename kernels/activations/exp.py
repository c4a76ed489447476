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
"""
import numpy as np

from .._xp import get_xp

__all__ = ["exp_dual", "gaussian_dual"]


def exp_dual(k11, k12, k22, want_dot, a, b):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a exp(b x)."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    e = xp.exp(dt(b * b / 2) * (k11 + k22 + 2 * k12))
    return dt(a * a) * e, (dt(a * a * b * b) * e if want_dot else None)


def gaussian_dual(k11, k12, k22, want_dot, a, b):
    """``(E[phi phi], E[phi' phi'] or None)`` for phi(x) = a exp(b x^2)."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    # D = 1 - 2 b (k11 + k22) + 4 b^2 (k11 k22 - k12^2), the last term within rounding of 0
    # set to 0 (as in arccos._r_theta): the expanded product cancelled ~eps k^2 of D ~ 4 |b| k
    # for large, collinear inputs (float32, k ~ 6e4: a non-PSD kernel)
    prod = k11 * k22
    r2 = prod - k12 * k12
    r2 = xp.where(r2 <= dt(4 * np.finfo(k12.dtype).eps) * prod, dt(0), r2)
    det = 1 - dt(2 * b) * (k11 + k22) + dt(4 * b * b) * r2
    root = xp.sqrt(det)
    nngp = dt(a * a) / root
    if not want_dot:
        return nngp, None
    return nngp, dt(4 * a * a * b * b) * k12 / (det * root)
