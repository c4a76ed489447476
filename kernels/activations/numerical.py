"""Dual of an arbitrary activation by Gauss quadrature in polar coordinates.

For (u, v) ~ N(0, [[k11, k12], [k12, k22]]) write u = s1 r cos(alpha), v = s2 r cos(alpha - theta)
with s_i = sqrt(k_ii), theta = atan2(sqrt(k11 k22 - k12^2), k12), alpha uniform and
r^2 / 2 ~ Exp(1). Pairing the rays alpha and alpha + pi (r over the whole line):

    E[f(u, v)] = 1 / (2 pi) int_{pi/2}^{3 pi/2} d alpha int_0^inf dt e^-t
                 [f(u, v) + f(-u, -v)]  at  r = sqrt(2 t)

The radial integral is Gauss-Laguerre (the Gauss rule of the Gaussian weight along a line: the
even part of f in r is a function of t = r^2 / 2, and for activations that are homogeneous
on each half-line, ReLU, Abs, rectified monomials, sign, the rule is exact); the angle is
Gauss-Legendre on the two arcs [pi/2, pi/2 + theta] and [pi/2 + theta, 3 pi/2], whose ends are
exactly where u = 0 or v = 0. Activations with a kink at 0 are therefore integrated to
machine precision, unlike a tensor-product Gauss-Hermite rule in Cholesky coordinates (Neural
Tangents' ``ElementwiseNumerical``), whose error for ReLU decays only algebraically in ``deg``.
``deg`` nodes are used on each arc and along the radius.

The NTK term E[phi'(u) phi'(v)] uses ``df`` when given; otherwise phi' is obtained from ``fn``
itself by central differences whose stencil never crosses 0 (step min(h |x|_1, |x| / 2),
h = 2^-17, |x|_1 = max(|x|, 1)), so a kink at 0 (the usual place) never pollutes it. No
autodiff, and no derivative from the user, is needed. (Price's theorem, d/dk12 E[phi phi], or
a Hermite expansion would avoid differentiating phi but converge slowly at k12^2 = k11 k22 for
non-smooth phi, which is exactly the diagonal every kernel has.)
"""
import math

import numpy as np
from scipy.special import roots_laguerre, roots_legendre

from .._xp import get_xp

__all__ = ["numerical_dual", "central_difference"]

_CHUNK = 1 << 21   # function evaluations per chunk of entries
_H = 2.0 ** -17


def central_difference(xp, fn, x):
    """phi'(x) ~ (fn(x + h) - fn(x - h)) / (2 h), the stencil kept on one side of 0."""
    ax = xp.abs(x)
    h = xp.where(ax > 0, xp.minimum(_H * xp.maximum(ax, 1.0), ax / 2), _H)
    return (fn(x + h) - fn(x - h)) / (2 * h)


def _nodes(xp, deg):
    t, wt = roots_laguerre(deg)
    x, wx = roots_legendre(deg)
    return xp.asarray(np.sqrt(2 * t)), xp.asarray(wt), xp.asarray(x), xp.asarray(wx)


def _chunk(xp, fn, df, k11, k12, k22, nodes, want_dot):
    rad, wr, x, wx = nodes
    s1, s2 = xp.sqrt(k11), xp.sqrt(k22)
    theta = xp.arctan2(xp.sqrt(xp.maximum(k11 * k22 - k12 * k12, 0.0)), k12)
    half = (1 + x) / 2                                    # Legendre nodes mapped to [0, 1]
    alpha = xp.concatenate([math.pi / 2 + theta[:, None] * half,
                            math.pi / 2 + theta[:, None] + (math.pi - theta[:, None]) * half], 1)
    w_alpha = xp.concatenate([theta[:, None] * wx / 2, (math.pi - theta[:, None]) * wx / 2], 1)
    u = (s1[:, None] * xp.cos(alpha))[:, :, None] * rad
    v = (s2[:, None] * xp.cos(alpha - theta[:, None]))[:, :, None] * rad
    w = w_alpha[:, :, None] * wr / (2 * math.pi)
    nngp = xp.sum(w * (fn(u) * fn(v) + fn(-u) * fn(-v)), axis=(1, 2))
    if not want_dot:
        return nngp, None
    d = df if df is not None else (lambda z: central_difference(xp, fn, z))
    dot = xp.sum(w * (d(u) * d(v) + d(-u) * d(-v)), axis=(1, 2))
    return nngp, dot


def numerical_dual(k11, k12, k22, want_dot, fn, deg, df=None):
    """``(E[fn(u) fn(v)], E[fn'(u) fn'(v)] or None)`` by the quadrature of the module
    docstring; ``fn``/``df`` are vectorised callables on float64 arrays. Computed in float64,
    returned in ``k12``'s dtype; non-finite values raise a ValueError."""
    xp = get_xp(k12)
    shape = tuple(k12.shape)
    ops = [xp.ascontiguousarray(xp.broadcast_to(xp.asarray(k, dtype=xp.float64), shape))
           .reshape(-1) for k in (k11, k12, k22)]
    nodes = _nodes(xp, int(deg))
    step = max(1, _CHUNK // (4 * deg * deg))
    nngp, dot = xp.empty(ops[1].size), (xp.empty(ops[1].size) if want_dot else None)
    for s in range(0, ops[1].size, step):
        sl = slice(s, s + step)
        n, d = _chunk(xp, fn, df, ops[0][sl], ops[1][sl], ops[2][sl], nodes, want_dot)
        nngp[sl] = n
        if want_dot:
            dot[sl] = d
    for name, arr in (("E[fn(u) fn(v)]", nngp), ("E[fn'(u) fn'(v)]", dot)):
        if arr is not None and not bool(xp.isfinite(arr).all()):
            raise ValueError(f"ElementwiseNumerical: the quadrature of {name} is not finite; "
                             "`fn` (or `df`) returned NaN/Inf at some quadrature nodes, or "
                             "grows too fast for these variances.")
    out_dt = k12.dtype
    return (nngp.reshape(shape).astype(out_dt, copy=False),
            None if dot is None else dot.reshape(shape).astype(out_dt, copy=False))
