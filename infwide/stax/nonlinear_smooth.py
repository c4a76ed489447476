"""Smooth nonlinearities: Erf, Sigmoid_like, Gelu, Sin, Cos, Rbf, Exp, Gaussian.

Names, arguments and defaults are Neural Tangents'; each constructor is one ``Elementwise``
wired to its dual in ``kernels.activations``.
"""
import functools
import math

from ..kernels import ops
from ..kernels.activations.erf import erf_dual
from ..kernels.activations.exp import exp_dual, gaussian_dual
from ..kernels.activations.gelu import gelu_dual
from ..kernels.activations.trig import cos_dual, rbf_dual, sin_dual
from ._activation_args import FiniteGuard, real
from .elementwise import Elementwise

__all__ = ["Erf", "Sigmoid_like", "Gelu", "Sin", "Cos", "Rbf", "Exp", "Gaussian"]

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


def _erf(xp, x):
    if xp.__name__ == "numpy":
        from scipy.special import erf
    else:  # CuPy
        from cupyx.scipy.special import erf
    return erf(x)


def _erf_fn(xp, x, a, b, c):
    t = x.dtype.type
    return t(a) * _erf(xp, t(b) * x) + t(c)


def _erf_dfn(xp, x, a, b, c):
    t = x.dtype.type
    return t(2 * a * b / math.sqrt(math.pi)) * xp.exp(-(t(b) * x) ** 2)


def Erf(a=1., b=1., c=0.):
    """phi(x) = a erf(b x) + c."""
    a, b, c = (real("Erf", n, v) for n, v in (("a", a), ("b", b), ("c", c)))
    return Elementwise(f"Erf({a}, {b}, {c})", functools.partial(_erf_fn, a=a, b=b, c=c),
                       functools.partial(_erf_dfn, a=a, b=b, c=c),
                       functools.partial(erf_dual, a=a, b=b, c=c),
                       op=ops.Dual("erf", (a, b, c)))


def Sigmoid_like():
    """phi(x) = erf(x / 2.4020563531719796) / 2 + 1/2, a sigmoid fitted on [-5, 5] (NT)."""
    layer = Erf(a=0.5, b=1 / 2.4020563531719796, c=0.5)
    layer.name = "Sigmoid_like"
    return layer


def _gelu_fn(xp, x, approximate):
    t = x.dtype.type
    if approximate:
        return t(0.5) * x * (1 + xp.tanh(t(_SQRT_2_OVER_PI) * (x + t(_GELU_CUBIC) * x ** 3)))
    return t(0.5) * x * (1 + _erf(xp, x * t(1 / math.sqrt(2))))


def _gelu_dfn(xp, x, approximate):
    t = x.dtype.type
    if approximate:
        th = xp.tanh(t(_SQRT_2_OVER_PI) * (x + t(_GELU_CUBIC) * x ** 3))
        return t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * t(_SQRT_2_OVER_PI) * (
            1 + t(3 * _GELU_CUBIC) * x * x)
    return (t(0.5) * (1 + _erf(xp, x * t(1 / math.sqrt(2))))
            + x * xp.exp(t(-0.5) * x * x) * t(1 / math.sqrt(2 * math.pi)))


def Gelu(approximate=False):
    """phi(x) = x Phi(x); ``approximate=True`` uses the tanh approximation in the finite
    network only (the kernel is the exact Gelu's, as in Neural Tangents)."""
    if not isinstance(approximate, (bool, int)):
        raise ValueError(f"Gelu: `approximate` must be a bool; got {approximate!r}.")
    approximate = bool(approximate)
    return Elementwise(f"Gelu(approximate={approximate})",
                       functools.partial(_gelu_fn, approximate=approximate),
                       functools.partial(_gelu_dfn, approximate=approximate), gelu_dual)


def _sin_fn(xp, x, a, b, c):
    t = x.dtype.type
    return t(a) * xp.sin(t(b) * x + t(c))


def _sin_dfn(xp, x, a, b, c):
    t = x.dtype.type
    return t(a * b) * xp.cos(t(b) * x + t(c))


def _cos_fn(xp, x, a, b, c):
    t = x.dtype.type
    return t(a) * xp.cos(t(b) * x + t(c))


def _cos_dfn(xp, x, a, b, c):
    t = x.dtype.type
    return t(-a * b) * xp.sin(t(b) * x + t(c))


def _abc(layer, a, b, c):
    return tuple(real(layer, n, v) for n, v in (("a", a), ("b", b), ("c", c)))


def Sin(a=1., b=1., c=0.):
    """phi(x) = a sin(b x + c)."""
    a, b, c = _abc("Sin", a, b, c)
    p = dict(a=a, b=b, c=c)
    return Elementwise(f"Sin({a}, {b}, {c})", functools.partial(_sin_fn, **p),
                       functools.partial(_sin_dfn, **p), functools.partial(sin_dual, **p))


def Cos(a=1., b=1., c=0.):
    """phi(x) = a cos(b x + c) (Neural Tangents' Sin with the phase c + pi/2)."""
    a, b, c = _abc("Cos", a, b, c)
    p = dict(a=a, b=b, c=c)
    return Elementwise(f"Cos({a}, {b}, {c})", functools.partial(_cos_fn, **p),
                       functools.partial(_cos_dfn, **p), functools.partial(cos_dual, **p))


def Rbf(gamma=1.0):
    """phi(x) = sqrt(2) sin(sqrt(2 gamma) x + pi/4), whose NNGP is the RBF kernel
    exp(-gamma (k11 + k22 - 2 k12)); ``gamma > 0`` (gamma = 1 / (2 l^2))."""
    gamma = real("Rbf", "gamma", gamma)
    if gamma <= 0:
        raise ValueError(f"Rbf: `gamma` must be positive (gamma = 1 / (2 l^2) for a length "
                         f"scale l); got {gamma!r}.")
    p = dict(a=math.sqrt(2), b=math.sqrt(2 * gamma), c=math.pi / 4)
    return Elementwise(f"Rbf({gamma})", functools.partial(_sin_fn, **p),
                       functools.partial(_sin_dfn, **p),
                       functools.partial(rbf_dual, gamma=gamma))


def _exp_fn(xp, x, a, b):
    t = x.dtype.type
    return t(a) * xp.exp(t(b) * x)


def _exp_dfn(xp, x, a, b):
    t = x.dtype.type
    return t(a * b) * xp.exp(t(b) * x)


def Exp(a=1., b=1.):
    """phi(x) = a exp(b x)."""
    a, b = real("Exp", "a", a), real("Exp", "b", b)
    name = f"Exp({a}, {b})"
    return Elementwise(name, functools.partial(_exp_fn, a=a, b=b),
                       functools.partial(_exp_dfn, a=a, b=b),
                       FiniteGuard(name, functools.partial(exp_dual, a=a, b=b)))


def _gaussian_fn(xp, x, a, b):
    t = x.dtype.type
    return t(a) * xp.exp(t(b) * x * x)


def _gaussian_dfn(xp, x, a, b):
    t = x.dtype.type
    return t(2 * a * b) * x * xp.exp(t(b) * x * x)


def Gaussian(a=1., b=-1.):
    """phi(x) = a exp(b x^2). For b > 0 the kernel exists only for input variances below
    1 / (4 b); larger ones raise a ValueError."""
    a, b = real("Gaussian", "a", a), real("Gaussian", "b", b)
    name = f"Gaussian({a}, {b})"
    hint = (f" With b = {b} > 0 the expectations are finite only for variances below "
            f"1 / (4 b) = {1 / (4 * b):.6g}." if b > 0 else "")
    return Elementwise(name, functools.partial(_gaussian_fn, a=a, b=b),
                       functools.partial(_gaussian_dfn, a=a, b=b),
                       FiniteGuard(name, functools.partial(gaussian_dual, a=a, b=b), hint))
