"""Branch-free polynomial ``atan2(r, k)`` for ``r >= 0``, to about 1.5 ulp in float32 and float64.

Why: the ReLU-family duals need the angle between two Gaussian coordinates,
``theta = atan2(sqrt(k11 k22 - k12^2), k12)`` (the form Neural Tangents and
``kernels.activations.relu`` use). ``math.atan2`` inside a Numba loop is a scalar libm call that
stops the loop from vectorising (several ms per 10^6 entries against a fraction of a ms for a
vectorised polynomial). ``atan2`` of the already-formed ``r`` is well conditioned, so the
fused loops agree with the reference to rounding (computing ``arccos(k12 / sqrt(k11 k22))``
instead would lose half the digits of theta near the diagonal, where c -> 1).

Method: with ``num = min(r, |k|)``, ``den = max(r, |k|)``, ``t = num / den`` in [0, 1];
for ``t > tan(pi/8)`` use ``atan(t) = pi/4 + atan((num - den) / (num + den))`` (one division
either way); then ``atan(u) = u + u z P(z)``, ``z = u^2 <= tan(pi/8)^2``, with ``P``
interpolating ``(atan(sqrt z) - sqrt z) / z^(3/2)`` at Chebyshev nodes (``fit_coefficients``;
degree 4 for float32, 10 for float64); finally ``pi/2 - a`` when ``r > |k|`` and ``pi - a``
when ``k < 0``; ``atan2(0, 0) = pi/2`` (Neural Tangents' fill for a zero variance).
Both sides of every choice are computed and selected, so loops vectorise.
"""
import numpy as np
from numba import types
from numba.extending import overload

from .._xp import get_xp

__all__ = ["atan2_poly", "fit_coefficients", "COEF32", "COEF64", "TAN_PI_8"]

TAN_PI_8 = 0.41421356237309503
# Monomial coefficients of P(z) = p0 + p1 z + ... (fit_coefficients(4) and (10)).
COEF32 = (-0.3333333176116852, 0.19999540483648964, -0.1426395559798464,
          0.10743731490791084, -0.06451928208121749)
COEF64 = (-0.3333333333333333, 0.1999999999999552, -0.14285714284666542,
          0.11111111015256361, -0.09090904578123903, 0.07692183190826087,
          -0.06664511447381948, 0.0585814891280221, -0.0508544973794026,
          0.03923165829558719, -0.01917688711906226)


def fit_coefficients(degree):
    """Re-derive the coefficients (needs mpmath): interpolate P at degree+1 Chebyshev nodes."""
    import mpmath as mp
    with mp.workdps(50):
        n, b = degree + 1, mp.tan(mp.pi / 8) ** 2
        nodes = [b / 2 + b / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
        vals = [(mp.atan(mp.sqrt(t)) - mp.sqrt(t)) / (t * mp.sqrt(t)) for t in nodes]
        vander = mp.matrix([[t ** j for j in range(n)] for t in nodes])
        coef = mp.lu_solve(vander, mp.matrix(vals))
        return tuple(float(coef[j]) for j in range(n))


def atan2_poly(r, k):
    """Reference (NumPy/CuPy array code) of the polynomial ``atan2(r, k)``, ``r >= 0``."""
    xp = get_xp(k)
    dt = k.dtype.type
    coef = COEF32 if k.dtype == np.float32 else COEF64
    ak = abs(k)
    num, den = xp.minimum(r, ak), xp.maximum(r, ak)
    red = num > dt(TAN_PI_8) * den
    n_ = xp.where(red, num - den, num)
    d_ = xp.where(red, num + den, den)
    u = n_ / xp.where(d_ > 0, d_, dt(1))
    z = u * u
    p = xp.full_like(z, dt(coef[-1]))
    for c in coef[-2::-1]:
        p = p * z + dt(c)
    a = u + u * z * p
    a = xp.where(red, a + dt(np.pi / 4), a)
    a = xp.where(r > ak, dt(np.pi / 2) - a, a)
    a = xp.where(den > 0, a, dt(np.pi / 2))
    return xp.where(k < 0, dt(np.pi) - a, a)


# -- Numba implementations, chosen by the argument's precision at compile time -----------------
_F = np.float32
_P32 = tuple(_F(c) for c in COEF32)
_T32, _ZERO32, _ONE32 = _F(TAN_PI_8), _F(0.0), _F(1.0)
_PI4_32, _PI2_32, _PI32 = _F(np.pi / 4), _F(np.pi / 2), _F(np.pi)


def _atan2_f32(r, k):
    ak = abs(k)
    num = min(r, ak)
    den = max(r, ak)
    red = num > _T32 * den
    n_ = num - den if red else num
    d_ = num + den if red else den
    u = n_ / (d_ if d_ > _ZERO32 else _ONE32)
    z = u * u
    p = (((_P32[4] * z + _P32[3]) * z + _P32[2]) * z + _P32[1]) * z + _P32[0]
    a = u + u * z * p
    a = a + _PI4_32 if red else a
    a = _PI2_32 - a if r > ak else a
    a = a if den > _ZERO32 else _PI2_32
    return _PI32 - a if k < _ZERO32 else a


_P64 = COEF64


def _atan2_f64(r, k):
    ak = abs(k)
    num = min(r, ak)
    den = max(r, ak)
    red = num > TAN_PI_8 * den
    n_ = num - den if red else num
    d_ = num + den if red else den
    u = n_ / (d_ if d_ > 0.0 else 1.0)
    z = u * u
    p = _P64[10]
    p = p * z + _P64[9]
    p = p * z + _P64[8]
    p = p * z + _P64[7]
    p = p * z + _P64[6]
    p = p * z + _P64[5]
    p = p * z + _P64[4]
    p = p * z + _P64[3]
    p = p * z + _P64[2]
    p = p * z + _P64[1]
    p = p * z + _P64[0]
    a = u + u * z * p
    a = a + np.pi / 4 if red else a
    a = np.pi / 2 - a if r > ak else a
    a = a if den > 0.0 else np.pi / 2
    return np.pi - a if k < 0.0 else a


@overload(atan2_poly)
def _atan2_poly_numba(r, k):
    if isinstance(k, types.Float) and k.bitwidth == 32:
        return _atan2_f32
    if isinstance(k, types.Float):
        return _atan2_f64
    return None
