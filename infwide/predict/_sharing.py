r"""Per-time sums over eigen-directions, with the work shared between times where it is exact.

The ensemble covariances at time :math:`t` are sums over the eigen-directions :math:`k` of the
train kernel (eigenvalues ascending) with weights :math:`w_t[k] = h_k(u_t)` and relatives
(``_spectral``): :math:`S_t = \sum_k \mathrm{block}(a_k w_t[k])`, where ``block`` is linear in
its column (``s @ z``) or quadratic (``s @ s.T``, the weight then being the square). Two ends of
the spectrum need not be summed per time:

- **converged tail.** Once :math:`x_k = \lambda_k u_t` is past :math:`-\log(\epsilon/2)`
  (17 in float32, 37 in float64), :math:`1 - e^{-x_k}` rounds to 1 and the weight is *bitwise*
  that of the latest time. The longest tail ``k >= c_t`` equal to the latest row is summed
  once, in blocks from the shortest tail to the longest (times in ascending order).
- **short-time head.** Where :math:`x_k` is below the radius of ``_series`` the weight is
  :math:`\sum_{j<J} c_j(u_t) \lambda_k^j` to a quarter of the unit roundoff, so the head
  ``p <= k < e_t`` is :math:`\sum_j c_j(u_t) H_j` with the time-free
  :math:`H_j = \sum_k \lambda_k^j\,\mathrm{block}(a_k)`, accumulated in blocks from the
  shortest head to the longest (times in descending order).

The heads grow towards early times and the tails towards late ones, so :func:`plan` splits
the times (by ``u``) into an early group, which shares its heads, and a late group, which
shares its tails, and picks the split, the order :math:`J` and the steps that touch the
fewest columns (``_plan``), against ``T n`` without sharing. For the benchmark's 20 times
from 0.1 to 10^4 (3000 train points) that is 31 % (NNGP) and 40 % (NTK) of ``T n`` in
float32; a trajectory that runs to convergence shares its tails as well. The sums are the
same up to rounding (terms are added in another order; the truncated series errs by less
than rounding).
"""
import itertools

import numpy as np

from ..backend import to_numpy
from ._plan import plan
from ._series import coefficients

__all__ = ["tail_starts", "per_time_sums"]


def tail_starts(xp, w, ref):
    """For every row ``t`` of ``w`` (T, n), the start of its longest tail equal to ``w[ref]``."""
    n = w.shape[1]
    same = w == w[ref][None, :]
    tail = xp.cumprod(same[:, ::-1], axis=1).sum(axis=1)
    return [n - int(v) for v in tail]


def per_time_sums(xp, a, w, ref, block, lam=None, u=None, power=1):
    """Yield ``(t, sums)`` for every row ``t`` of ``w`` (in some order), where ``sums`` is the
    sum over the columns ``k`` of ``block(a[:, k] * w[t, k])``.

    ``block(s, lo, hi)`` returns a tuple of fresh arrays (they are added to in place) for
    the scaled columns ``s = a[:, lo:hi] * w[t, lo:hi]``; it must be a sum of one term per
    column, linear in it (``power=1``, ``s @ z[lo:hi]``) or quadratic (``power=2``,
    ``s @ s.T``). ``ref`` is the row of the latest time. With ascending
    eigenvalues ``lam`` and times ``u`` (NumPy) such that ``w[t, k] ** power`` is
    ``(1 - exp(-lam[k] u[t])) / lam[k]`` for ``lam[k] > 0`` and 0 otherwise
    (``_spectral.inv_weights``), the heads are shared as well.
    """
    n = a.shape[1]
    starts = tail_starts(xp, w, ref)
    if lam is None:
        u = np.zeros(len(starts))
        pl = plan(None, u, starts, None, n)
        return _late_sums(xp, a, w, ref, block, pl)
    lam_np = to_numpy(lam).astype(np.float64)
    pl = plan(lam_np, u, starts, lam.dtype, n)
    return itertools.chain(_early_sums(xp, a, w, block, pl, lam, lam_np, u, power),
                           _late_sums(xp, a, w, ref, block, pl))


def _add(acc, part):
    if acc is None:
        return list(part)
    for x, y in zip(acc, part):
        x += y
    return acc


def _late_sums(xp, a, w, ref, block, pl):
    """The late group: own heads ``k < c_t`` per time, tails shared from the shortest up."""
    n = a.shape[1]
    shared, done = None, n
    for t in sorted(pl.late, key=lambda i: -pl.tail[i]):
        c = pl.tail[t]
        if c < done:   # extend the shared tail down to c
            shared = _add(shared, block(a[:, c:done] * w[ref, c:done][None, :], c, done))
            done = c
        if c == 0:    # nothing is added to ``shared`` after this
            yield t, tuple(shared)
            continue
        own = block(a[:, :c] * w[t, :c][None, :], 0, c)
        yield t, tuple(own) if shared is None else tuple(_add(list(own), shared))


def _early_sums(xp, a, w, block, pl, lam, lam_np, u, power):
    """The early group: heads ``p <= k < e_t`` from the series, shared from the shortest up;
    the rest ``e_t <= k < n`` per time."""
    n = a.shape[1]
    acc, sigma, done = None, None, pl.p
    for t in sorted(pl.early, key=lambda i: pl.head[i]):
        e = pl.head[t]
        if e > done:   # grow the shared heads to e, at the scale of their largest eigenvalue
            new_sigma = float(lam_np[e - 1])
            if acc is not None:
                _rescale(acc, sigma / new_sigma)
            sigma = new_sigma
            acc = _grow_heads(xp, acc, a, lam, done, e, sigma, pl.order, block, power)
            done = e
        sums = None
        if e > pl.p:
            c = coefficients(np.asarray(u)[t:t + 1], pl.order, sigma)[0]
            sums = _combine(xp, acc, c)
        if e < n or sums is None:
            own = block(a[:, e:] * w[t, e:][None, :], e, n)
            sums = tuple(own) if sums is None else tuple(_add(list(sums), own))
        yield t, sums


def _grow_heads(xp, acc, a, lam, lo, hi, sigma, order, block, power):
    """Add the columns ``lo:hi`` to the heads ``acc`` (``None`` at first): a list like
    ``block``'s tuple whose arrays have a leading axis ``j < order`` (powers of
    ``lam / sigma``). One ``block`` call per order, added in place as it comes, so that no
    more than one order's result is held besides the heads."""
    r = lam[lo:hi] / lam.dtype.type(sigma)
    cols = a[:, lo:hi]
    new = acc is None
    for j in range(order):
        part = block(cols * (r ** (j / power))[None, :], lo, hi)
        if new and j == 0:
            acc = [xp.empty((order,) + x.shape, dtype=x.dtype) for x in part]
        for x, y in zip(acc, part):
            if new:
                x[j] = y
            else:
                x[j] += y
    return acc


def _rescale(acc, ratio):
    """``H_j *= ratio**j`` (a change of the scale sigma); orders scaled below eps^2 are
    dropped: their terms are under rounding (``_series``)."""
    floor = float(np.finfo(acc[0].dtype).eps) ** 2
    for j in range(1, acc[0].shape[0]):
        f = ratio ** j
        for x in acc:
            if f < floor:
                x[j] = 0
            else:
                x[j] *= x.dtype.type(f)


def _combine(xp, acc, c):
    """``sum_j c[j] H_j`` for each stacked array (one pass: a matrix-vector product)."""
    out = []
    for x in acc:
        cj = xp.asarray(c, dtype=x.dtype)
        out.append((cj @ x.reshape(x.shape[0], -1)).reshape(x.shape[1:]))
    return tuple(out)
