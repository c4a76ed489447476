r"""Per-time sums over eigen-directions, sharing the directions that have converged.

The ensemble covariances at time :math:`t` are sums over the eigen-directions :math:`k` of the
train kernel with time-dependent weights :math:`w_t[k]` (:math:`h = (1 - e^{-x}) / \lambda`
and its relatives, ``_spectral``). Once :math:`x_k = \lambda_k \eta t / |y|` is past
:math:`-\log(\epsilon / 2)` (17 in float32, 37 in float64), :math:`1 - e^{-x_k}` rounds to 1
and the weight is *bitwise* the same as at any later time: those directions have converged.
Eigenvalues come in ascending order, so for each time the converged directions are, in
practice, a tail ``k >= c_t`` of the columns.

:func:`per_time_sums` compares each row of ``w`` with the row of the latest time and finds
the longest tail where they are equal; the tail's contribution is accumulated once, in blocks,
from the shortest tail to the longest, and each time adds only its own head ``k < c_t``. The
results are the same sums (to rounding: the terms are added in another order); the work drops
from ``T n`` columns to ``n + sum_t c_t``. For a trajectory that runs to convergence (NT's
examples; the benchmark's 20 times from 0.1 to 10^4) about half of the columns are shared.
"""

__all__ = ["tail_starts", "per_time_sums"]


def tail_starts(xp, w, ref):
    """For every row ``t`` of ``w`` (T, n), the start of its longest tail equal to ``w[ref]``."""
    n = w.shape[1]
    same = w == w[ref][None, :]
    tail = xp.cumprod(same[:, ::-1], axis=1).sum(axis=1)
    return [n - int(v) for v in tail]


def per_time_sums(xp, a, w, ref, block):
    """Yield ``(t, sums)`` for every row ``t`` of ``w``, where ``sums`` is the sum over the
    columns ``k`` of ``block(a[:, k] * w[t, k], k)``.

    ``block(s, lo, hi)`` returns a tuple of arrays for the scaled columns ``s = a[:, lo:hi] *
    w[t, lo:hi]``; it must be a sum of one term per column (``s @ z[lo:hi]``, ``s @ s.T``).
    ``ref`` is the row of the latest time.
    """
    n = a.shape[1]
    starts = tail_starts(xp, w, ref)
    shared, done = None, n
    for t in sorted(range(len(starts)), key=lambda i: -starts[i]):
        c = starts[t]
        if c < done:   # extend the shared tail down to c
            part = block(a[:, c:done] * w[ref, c:done][None, :], c, done)
            shared = part if shared is None else tuple(x + y for x, y in zip(shared, part))
            done = c
        if c == 0:
            yield t, shared
            continue
        own = block(a[:, :c] * w[t, :c][None, :], 0, c)
        yield t, own if shared is None else tuple(x + y for x, y in zip(own, shared))
