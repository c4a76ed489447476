"""Polynomials phi(x) = sum_n coef[n] x^n, and Monomial / Hermite as special cases.

Expanding x^n = sigma^n sum_i n! / (2^i i! (n - 2i)!) He_(n-2i)(x / sigma) in the probabilists'
Hermite polynomials and using Mehler's formula E[He_l(u/s1) He_m(v/s2)] = l! rho^l [l = m]
(O'Donnell 2014, "Analysis of Boolean functions", ch. 11; Neural Tangents' ``Polynomial``),
with s_l(q) = sum_i C[l, i] q^i and C[l, i] = coef[2i + l] (2i + l)! / (2^i i! sqrt(l!)):

    E[phi(u) phi(v)]   = sum_l s_l(k11) s_l(k22) k12^l
    E[phi'(u) phi'(v)] = sum_l l s_l(k11) s_l(k22) k12^(l-1)        (Price's theorem)

Written in k12 rather than in the correlation k12 / sqrt(k11 k22), every term is a polynomial in
(k11, k12, k22): no division, so zero variances are exact (Neural Tangents divides by
sqrt(k11 k22) there and returns NaN).

``Monomial(n)`` is coef = e_n: E[u^n v^n] = sum_i (n! / (2^i i!))^2 / (n - 2i)! (k11 k22)^i
k12^(n - 2i). ``Hermite(n)`` is the normalised He_n / sqrt(n!): at unit variances its dual is
k12^n, the formula Neural Tangents uses for every input (it assumes unit-variance inputs); the
expansion above is exact for any variances.
"""
import fractions
import math

import numpy as np

from .._xp import get_xp

__all__ = ["polynomial_matrix", "polynomial_dual", "hermite_coefficients"]


def polynomial_matrix(coef):
    """The matrix ``C[l, i]`` of the module docstring for power-basis coefficients ``coef``."""
    coef = [float(c) for c in coef]
    n_coef = len(coef)
    C = np.zeros((max(n_coef, 1), max((n_coef + 1) // 2, 1)))
    for n, c in enumerate(coef):
        for i in range(n // 2 + 1):
            l = n - 2 * i
            m = math.factorial(n) // (2 ** i * math.factorial(i))     # an integer
            C[l, i] = c * math.sqrt(float(fractions.Fraction(m * m, math.factorial(l))))
    return C


def hermite_coefficients(degree):
    """Power-basis coefficients of the normalised Hermite polynomial He_degree / sqrt(degree!)."""
    basis = np.zeros(degree + 1)
    basis[degree] = 1.0
    return np.polynomial.hermite_e.herme2poly(basis) / math.sqrt(math.factorial(degree))


def _horner(C_row, q):
    acc = None
    for c in C_row[::-1]:
        acc = q * 0 + c if acc is None else acc * q + q.dtype.type(c)
    return acc.astype(q.dtype, copy=False)


def polynomial_dual(k11, k12, k22, want_dot, C):
    """``(E[phi phi], E[phi' phi'] or None)`` for the polynomial with matrix ``C``
    (``polynomial_matrix``); see the module docstring."""
    xp = get_xp(k12)
    dt = k12.dtype.type
    L = C.shape[0]
    prods = [_horner(C[l], k11) * _horner(C[l], k22) for l in range(L)]
    nngp = xp.zeros_like(k12) + prods[L - 1]
    for l in range(L - 2, -1, -1):
        nngp = nngp * k12 + prods[l]
    if not want_dot:
        return nngp, None
    dot = xp.zeros_like(k12) + (dt(L - 1) * prods[L - 1] if L > 1 else dt(0))
    for l in range(L - 2, 0, -1):
        dot = dot * k12 + dt(l) * prods[l]
    return nngp, dot
