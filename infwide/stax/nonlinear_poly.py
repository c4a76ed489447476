"""Polynomial nonlinearities (Monomial, Polynomial, Hermite) and ``ElementwiseNumerical``.

Names, arguments and defaults are Neural Tangents'. Two deliberate differences, both where
Neural Tangents is not exact:

- ``Hermite(degree)``: Neural Tangents returns k12^degree, exact only for unit-variance
  inputs (it warns that it assumes them); here the dual is exact for any variances, and equal to
  Neural Tangents' at unit variances.
- ``Monomial(degree)`` accepts any non-negative integer degree (Neural Tangents: 0 to 5).
"""
import functools
import numbers

import numpy as np

from ..kernels.activations.numerical import central_difference, numerical_dual
from ..kernels.activations.polynomial import (hermite_coefficients, polynomial_dual,
                                              polynomial_matrix)
from ._activation_args import FiniteGuard
from ._activation_args import degree as _check_degree
from .elementwise import Elementwise

__all__ = ["Monomial", "Polynomial", "Hermite", "ElementwiseNumerical"]


def _polyval(xp, x, coef):
    """sum_n coef[n] x^n by Horner's rule, in ``x``'s dtype."""
    t = x.dtype.type
    out = xp.zeros_like(x)
    for c in coef[::-1]:
        out = out * x + t(c)
    return out


def _poly_fn(xp, x, coef):
    return _polyval(xp, x, coef)


def _poly_dfn(xp, x, coef):
    return _polyval(xp, x, [n * c for n, c in enumerate(coef)][1:])


def _poly_layer(name, coef):
    coef = tuple(float(c) for c in coef)
    dual = functools.partial(polynomial_dual, C=polynomial_matrix(coef))
    return Elementwise(name, functools.partial(_poly_fn, coef=coef),
                       functools.partial(_poly_dfn, coef=coef), FiniteGuard(name, dual))


def Polynomial(coef):
    """phi(x) = coef[0] + coef[1] x + ... + coef[n] x^n (numpy.polynomial order)."""
    try:
        arr = np.asarray(coef, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"Polynomial: `coef` must be a sequence of real numbers; got "
                         f"{coef!r}.") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"Polynomial: `coef` must be a 1-D sequence of finite numbers; got "
                         f"{coef!r}.")
    return _poly_layer(f"Polynomial({arr.tolist()})", arr.tolist())


def Monomial(degree):
    """phi(x) = x^degree, for a non-negative integer ``degree``."""
    n = _check_degree("Monomial", degree)
    return _poly_layer(f"Monomial({n})", [0.0] * n + [1.0])


def Hermite(degree):
    """phi(x) = He_degree(x) / sqrt(degree!), the normalised probabilists' Hermite polynomial
    (orthonormal under the standard Gaussian); the kernel is exact for any input variance."""
    n = _check_degree("Hermite", degree)
    return _poly_layer(f"Hermite({n})", hermite_coefficients(n).tolist())



def _user_fn(xp, x, fn):
    return fn(x)


def _user_dfn(xp, x, fn, df):
    return df(x) if df is not None else central_difference(xp, fn, x)


def ElementwiseNumerical(fn, deg, df=None):
    """Any activation ``fn`` (vectorised over arrays, e.g. ``numpy.tanh``) by quadrature with
    ``deg`` nodes per dimension (``kernels.activations.numerical``: Gauss quadrature in polar
    coordinates, exact for ReLU-like kinks at 0). Without ``df`` the derivative comes from ``fn``
    by one-sided-of-zero central differences, for the NTK and the finite backward pass."""
    if not callable(fn):
        raise ValueError(f"ElementwiseNumerical: `fn` must be callable; got {fn!r}.")
    if df is not None and not callable(df):
        raise ValueError(f"ElementwiseNumerical: `df` must be callable or None; got {df!r}.")
    if isinstance(deg, bool) or not isinstance(deg, numbers.Integral) or deg < 1:
        raise ValueError(f"ElementwiseNumerical: `deg` (quadrature nodes) must be an integer "
                         f">= 1; got {deg!r}.")
    name = f"ElementwiseNumerical({getattr(fn, '__name__', 'fn')}, deg={int(deg)})"
    return Elementwise(name, functools.partial(_user_fn, fn=fn),
                       functools.partial(_user_dfn, fn=fn, df=df),
                       functools.partial(numerical_dual, fn=fn, deg=int(deg), df=df))
