"""Which per-time sums share which columns (``_sharing``): the split of the times and the steps.

Costs are counted in columns of ``a`` put through ``block`` (one column of a J-fold head
counts J). Every shared step also writes a fresh output and adds it to the shared sums: about
:data:`STEP_COST` columns' worth of memory traffic per array it touches (measured on the
benchmark, 3000 x 3500 outputs: a one-column step of a six-fold head took as long as ~200
columns of matrix product), so heads and tails grow in a few large steps, not one per time.
"""
import numpy as np

from ._series import ORDERS, head_ends

__all__ = ["Plan", "plan", "breakpoints", "STEP_COST"]

STEP_COST = 100


class Plan:
    """``early`` times share heads of ``order`` terms over the columns ``p:head[t]``; ``late``
    times share the tails ``tail[t]:``; ``cost`` is the model's count of columns."""

    def __init__(self, early, late, order, p, head, tail, cost):
        self.early, self.late, self.order = early, late, order
        self.p, self.head, self.tail, self.cost = p, head, tail, cost


def plan(lam, u, starts, dtype, n):
    """The cheapest :class:`Plan` for ascending eigenvalues ``lam`` (NumPy), times ``u``
    (``lam * u`` is the exponent ``x``) and the tail starts ``starts`` (``tail_starts``);
    without ``lam``, tails only.

    The early group is a prefix of the times by ``u`` (heads grow towards early times), the
    rest is the late group. The split and the order are chosen on the column count plus
    :data:`STEP_COST` per distinct end; then the steps of each group are chosen exactly
    (:func:`breakpoints`)."""
    by_u = [int(i) for i in np.argsort(np.asarray(u, dtype=np.float64), kind="stable")]
    n_t = len(by_u)
    late_cost = [0] * (n_t + 1)       # late_cost[k]: times by_u[k:] share their tails
    c_min, own, seen = n, 0, set()
    for k in range(n_t - 1, -1, -1):
        c = starts[by_u[k]]
        c_min, own = min(c_min, c), own + c
        seen.add(c)
        late_cost[k] = (n - c_min) + own + STEP_COST * len(seen - {n})
    best = (late_cost[0], 0, None, 0, None)
    for order in (ORDERS if lam is not None else ()):
        p, ends = head_ends(lam, u, order, dtype)
        e_max, own, seen = p, 0, set()
        for k in range(1, n_t + 1):   # times by_u[:k] share their heads
            e = ends[by_u[k - 1]]
            e_max, own = max(e_max, e), own + (n - e)
            seen.add(e)
            cost = order * (e_max - p) + own + late_cost[k] + \
                order * STEP_COST * len(seen - {p})
            if cost < best[0]:
                best = (cost, k, order, p, ends)
    _, k, order, p, ends = best
    early, late = by_u[:k], by_u[k:]
    head, cost = {}, 0
    if order is not None:
        head, cost = breakpoints({t: ends[t] for t in early}, p, n, order)
    tail_len, tail_cost = breakpoints({t: n - starts[t] for t in late}, 0, n, 1)
    tail = {t: n - v for t, v in tail_len.items()}
    return Plan(early, late, order, p, head, tail, cost + tail_cost)


def breakpoints(ends, p, n, fold):
    """``({t: b_t}, cost)``: shared sums over the columns ``p:b`` grown in steps, each time
    ``t`` using the largest step ``b_t <= ends[t]`` and summing ``b_t:n`` itself.

    Minimises ``fold * (b_max - p) + STEP_COST * fold * steps + sum_t (n - b_t)`` exactly, by
    dynamic programming over the distinct ends (``O(K^2)``, vectorised over one index)."""
    if not ends:
        return {}, 0
    e = np.sort(np.fromiter(ends.values(), dtype=np.int64))
    v = np.unique(np.concatenate([[p], e]))
    first = np.searchsorted(e, v, side="left")   # times with ends >= v[i]: len(e) - first[i]
    best = np.empty(len(v))
    back = np.zeros(len(v), dtype=np.int64)
    best[0] = 0.0
    step = STEP_COST * fold
    for j in range(1, len(v)):
        cost = best[:j] + (first[j] - first[:j]) * (n - v[:j]) + fold * (v[j] - v[:j]) + step
        back[j] = int(np.argmin(cost))
        best[j] = cost[back[j]]
    total = best + (len(e) - first) * (n - v)
    j = int(np.argmin(total))
    chosen = []
    while j > 0:
        chosen.append(int(v[j]))
        j = int(back[j])
    chosen = np.array(sorted(chosen + [p]), dtype=np.int64)
    use = {t: int(chosen[np.searchsorted(chosen, x, side="right") - 1]) for t, x in ends.items()}
    return use, float(total.min())
