"""Constructors of the nonlinearity layers (each one line over ``Elementwise``)."""
import functools

from ..kernels.activations.relu import abrelu_dual
from .elementwise import Elementwise

__all__ = ["ABRelu", "Relu", "LeakyRelu", "Abs"]


def _abrelu_fn(xp, x, a, b):
    return xp.where(x > 0, x * x.dtype.type(b), x * x.dtype.type(a))


def _abrelu_dfn(xp, x, a, b):
    return xp.where(x > 0, x.dtype.type(b), x.dtype.type(a))


def ABRelu(a, b):
    """phi(x) = a min(x, 0) + b max(x, 0)."""
    a, b = float(a), float(b)
    return Elementwise(f"ABRelu({a}, {b})", functools.partial(_abrelu_fn, a=a, b=b),
                       functools.partial(_abrelu_dfn, a=a, b=b),
                       functools.partial(abrelu_dual, a=a, b=b))


def Relu():
    l = ABRelu(0, 1)
    l.name = "Relu"
    return l


def LeakyRelu(alpha):
    l = ABRelu(alpha, 1)
    l.name = f"LeakyRelu({alpha})"
    return l


def Abs():
    l = ABRelu(-1, 1)
    l.name = "Abs"
    return l
