r"""Short-time expansion of the gradient-flow weight :math:`h = (1 - e^{-x}) / \lambda`.

With :math:`x = \lambda u` (:math:`u = \eta t / |y|`, ``_spectral``) and
:math:`\varphi(x) = (1 - e^{-x}) / x = \sum_{j \ge 0} (-x)^j / (j + 1)!`,

.. math::
    h = u\,\varphi(\lambda u) = \sum_{j=0}^{J-1} c_j(u)\,\lambda^j + R_J, \qquad
    c_j(u) = \frac{(-1)^j u^{j+1}}{(j+1)!}.

For :math:`0 \le x < 1` the series alternates with decreasing terms, so the truncation error
is at most :math:`u\,x^J / (J+1)!`, i.e. a relative error of at most
:math:`x^J / (J+1)! / (1 - x/2)` (:math:`\varphi(x) \ge 1 - x/2`). We use the expansion only
where this bound is below a quarter of the unit roundoff of the working precision
(:func:`radius`): there it is as exact as ``-expm1(-x) / lam`` itself, whose
rounding is larger. The point of it: the time dependence then sits in the scalars
:math:`c_j(u)`, so a sum over directions :math:`\sum_k h_k\,a_k z_k^\top` for every time with
small :math:`x` needs only the :math:`J` time-free sums :math:`\sum_k \lambda_k^j a_k z_k^\top`
(``_sharing``).

To keep :math:`\lambda^j` in range the powers are taken of :math:`\lambda / \sigma` and
:math:`\sigma^j` is moved into the coefficients (:func:`coefficients`).
"""
import math

import numpy as np

__all__ = ["ORDERS", "radius", "coefficients", "head_ends"]

ORDERS = (2, 3, 4, 5, 6, 8, 10)


def radius(order, dtype):
    """An ``x`` up to which ``order`` terms of the series err by at most a quarter of the
    unit roundoff of ``dtype`` (relative; the bound of the module docstring)."""
    budget = math.factorial(order + 1) * float(np.finfo(dtype).eps) / 8
    x = budget ** (1.0 / order)                  # without the 1 / (1 - x/2)
    return (budget * (1 - x / 2)) ** (1.0 / order)   # smaller x, so the factor is safe


def coefficients(u, order, sigma):
    """``(T, order)`` float64 ``c_j(u) sigma^j`` (module docstring), for times ``u`` (T,)."""
    u = np.asarray(u, dtype=np.float64)
    j = np.arange(order)
    sign = np.where(j % 2 == 0, 1.0, -1.0)
    fact = np.array([math.factorial(k + 1) for k in j], dtype=np.float64)
    return sign[None, :] * u[:, None] ** (j + 1)[None, :] * float(sigma) ** j[None, :] \
        / fact[None, :]


def head_ends(lam, u, order, dtype):
    """``(p, ends)``: the positive eigenvalues are ``lam[p:]`` (ascending ``lam``, NumPy), and
    for time ``t`` the expansion of ``order`` terms holds on the columns ``p:ends[t]``
    (``lam * u[t] < radius``; all of them at ``u = 0``). Negative or infinite ``u`` get none."""
    lam = np.asarray(lam, dtype=np.float64)
    n = lam.shape[0]
    p = int(np.searchsorted(lam, 0.0, side="right"))
    r = radius(order, dtype)
    ends = []
    for ut in np.asarray(u, dtype=np.float64):
        if ut == 0:
            ends.append(n)
        elif 0 < ut < np.inf:
            ends.append(max(p, int(np.searchsorted(lam, r / ut, side="left"))))
        else:
            ends.append(p)
    return p, ends
