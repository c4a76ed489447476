"""The ABReLU family: phi(x) = a min(x, 0) + b max(x, 0) (ReLU: a=0, b=1; |x|: a=-1, b=1).

With r = sqrt(k11 k22 - k12^2) and theta = atan2(r, k12) (Cho & Saul 2009, eq. 6 with n=1;
Neural Tangents' ABRelu):

    E[phi(u) phi(v)]   = (a - b)^2 / (2 pi) * r + ((a^2 + b^2) / 2 - (a - b)^2 / (2 pi) theta) k12
    E[phi'(u) phi'(v)] = (a^2 + b^2) / 2 - (a - b)^2 / (2 pi) theta
"""
import numpy as np

from .._xp import get_xp

__all__ = ["abrelu_dual"]


def abrelu_dual(k11, k12, k22, want_dot, a, b):
    """Reference (NumPy/CuPy) dual of ABReLU."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    r = xp.sqrt(xp.maximum(k11 * k22 - k12 * k12, dt(0)))
    theta = xp.arctan2(r, k12)
    factor = dt((a - b) ** 2 / (2 * np.pi))
    dot = dt((a * a + b * b) / 2) - factor * theta
    return factor * r + dot * k12, (dot if want_dot else None)
