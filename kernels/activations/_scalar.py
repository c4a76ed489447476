"""Scalar building blocks of the fast dual activations, shared by Numba CPU and CUDA code.

Every function here is a plain scalar function compiled with ``cpu_jit``; a Numba-CUDA kernel
that calls one compiles it as a device function, so the same formula serves both targets (and
other fused loops may call them too). ``T`` is the float type (``numpy.float32`` or
``numpy.float64``) the arithmetic stays in: constants are cast with ``T(c)``, so a float32 loop
never widens to float64.

``atan2_nonneg`` replaces ``math.atan2`` in the hot loops: libm's atan2 cannot be vectorised
and costs ~10 ns per call, while this branch-free polynomial runs in SIMD lanes (~0.4 ns per
entry on one core in float32) with a relative error below 2e-15 (float64) or one float32 ulp.
"""
import math

from .._jit import cpu_jit

__all__ = ["ATAN_COEF", "atan_unit", "atan2_nonneg", "atan2_signed"]

# atan(x) = x + x z P(z), z = x^2, on |x| <= tan(pi/8). P of degree 8 fitted by iteratively
# reweighted least squares (Lawson's algorithm towards minimax) on 8000 Chebyshev nodes;
# max relative error of the approximation: 1.1e-15 (tests/test_activations_fast.py checks it).
ATAN_COEF = (-0.3333333333325942, 0.19999999982629785, -0.1428571287106771,
             0.11111054374435819, -0.0908961466797547, 0.07674316176499728,
             -0.06510240353700728, 0.050374154980755585, -0.02547441010635226)
_TAN_PI_8 = 0.41421356237309503


@cpu_jit
def atan_unit(t, T):
    """arctan(t) for 0 <= t <= 1: reduce t > tan(pi/8) by atan(t) = pi/4 + atan((t-1)/(t+1))."""
    big = t > T(_TAN_PI_8)
    x = (t - T(1.0)) / (t + T(1.0)) if big else t
    z = x * x
    p = T(ATAN_COEF[8])
    p = p * z + T(ATAN_COEF[7])
    p = p * z + T(ATAN_COEF[6])
    p = p * z + T(ATAN_COEF[5])
    p = p * z + T(ATAN_COEF[4])
    p = p * z + T(ATAN_COEF[3])
    p = p * z + T(ATAN_COEF[2])
    p = p * z + T(ATAN_COEF[1])
    p = p * z + T(ATAN_COEF[0])
    a = x + x * z * p
    return a + T(math.pi / 4) if big else a


@cpu_jit
def atan2_nonneg(y, x, T):
    """atan2(y, x) in [0, pi] for y >= 0, with atan2(0, 0) = pi/2 (Neural Tangents' fill value
    for the angle between a zero-variance pre-activation and anything)."""
    ax = abs(x)
    hi = max(ax, y)
    lo = min(ax, y)
    t = lo / hi if hi > T(0.0) else T(1.0)
    a = atan_unit(t, T)
    a = T(math.pi / 2) - a if y > ax else a
    a = T(math.pi) - a if x < T(0.0) else a
    return a if hi > T(0.0) else T(math.pi / 2)


@cpu_jit
def atan2_signed(y, x, T):
    """atan2(y, x) for x >= 0 and any y (odd in y); atan2(0, 0) = 0."""
    a = atan2_nonneg(abs(y), x, T)
    a = a if (y != T(0.0) or x != T(0.0)) else T(0.0)
    return -a if y < T(0.0) else a
