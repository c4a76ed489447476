"""Piecewise nonlinearities: the ABReLU family, Sign and the rectified monomials.

Each constructor is one ``Elementwise`` wired to its dual in ``kernels.activations``; names,
arguments and defaults are Neural Tangents'. Like Neural Tangents, every one needs a Gaussian
input (a Dense or Conv layer right before it).
"""
import functools

from ..kernels import ops
from ..kernels.activations.arccos import rectified_monomial_dual, sign_dual
from ..kernels.activations.relu import abrelu_dual
from ._activation_args import FiniteGuard, Stabilized, real
from ._activation_args import degree as check_degree
from .elementwise import Elementwise

__all__ = ["ABRelu", "Relu", "LeakyRelu", "Abs", "Sign", "RectifiedMonomial"]


def _abrelu_fn(xp, x, a, b):
    return xp.where(x > 0, x * x.dtype.type(b), x * x.dtype.type(a))


def _abrelu_dfn(xp, x, a, b):
    return xp.where(x > 0, x.dtype.type(b), x.dtype.type(a))


def ABRelu(a, b, do_stabilize=False):
    """phi(x) = a min(x, 0) + b max(x, 0).

    ``do_stabilize=True`` rescales the covariances by their largest entry around the dual (as in
    Neural Tangents), which changes nothing but rounding and guards very deep networks against
    overflow of k11 * k22.
    """
    a, b = real("ABRelu", "a", a), real("ABRelu", "b", b)
    dual = functools.partial(abrelu_dual, a=a, b=b)
    return Elementwise(f"ABRelu({a}, {b})", functools.partial(_abrelu_fn, a=a, b=b),
                       functools.partial(_abrelu_dfn, a=a, b=b),
                       Stabilized(dual) if do_stabilize else dual,
                       op=None if do_stabilize else ops.Dual("abrelu", (a, b)))


def _renamed(layer, name):
    layer.name = name
    return layer


def Relu(do_stabilize=False):
    """phi(x) = max(x, 0)."""
    return _renamed(ABRelu(0, 1, do_stabilize), "Relu")


def LeakyRelu(alpha, do_stabilize=False):
    """phi(x) = alpha min(x, 0) + max(x, 0)."""
    alpha = real("LeakyRelu", "alpha", alpha)
    return _renamed(ABRelu(alpha, 1, do_stabilize), f"LeakyRelu({alpha})")


def Abs(do_stabilize=False):
    """phi(x) = |x|."""
    return _renamed(ABRelu(-1, 1, do_stabilize), "Abs")


def _sign_fn(xp, x):
    return xp.sign(x)


def _zero_dfn(xp, x):
    return xp.zeros_like(x)


def Sign():
    """phi(x) = sign(x). Its derivative is taken as 0 (zero almost everywhere): the finite
    network's backward pass passes no gradient through it and the NTK term is 0, as in Neural
    Tangents."""
    return Elementwise("Sign", _sign_fn, _zero_dfn, sign_dual)


def _rect_fn(xp, x, degree):
    return xp.where(x >= 0, x ** degree, x.dtype.type(0))


def _rect_dfn(xp, x, degree):
    if degree == 0:
        return xp.zeros_like(x)
    return xp.where(x >= 0, x.dtype.type(degree) * x ** (degree - 1), x.dtype.type(0))


def RectifiedMonomial(degree):
    """phi(x) = (x >= 0) x^degree, for a non-negative integer ``degree``."""
    n = check_degree("RectifiedMonomial", degree)
    name = f"RectifiedMonomial({n})"
    return Elementwise(name, functools.partial(_rect_fn, degree=n),
                       functools.partial(_rect_dfn, degree=n),
                       FiniteGuard(name, functools.partial(rectified_monomial_dual, degree=n)))
