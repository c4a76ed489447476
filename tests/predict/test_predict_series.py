"""predict._series and predict._plan: the short-time expansion of the gradient-flow weight is
as exact as the working precision where it is used, and the step plan is the cheapest one."""
import itertools
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest

from infwide.predict import _plan
from infwide.predict._series import ORDERS, coefficients, head_ends, radius
from infwide.predict._spectral import inv_weights


def _phi(x, terms):
    """(1 - e^-x)/x by its series in 50-digit decimals (``terms`` terms)."""
    getcontext().prec = 50
    x = Decimal(x)
    return sum((-x) ** j / math.factorial(j + 1) for j in range(terms))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ORDERS)
def test_truncation_error_is_below_a_quarter_ulp_at_the_radius(dtype, order):
    x = radius(order, dtype)
    exact, cut = _phi(x, 60), _phi(x, order)
    rel = abs(float((cut - exact) / exact))
    assert rel <= np.finfo(dtype).eps / 8
    # and the bound is not loose by much: at twice the radius the error is 2^order larger
    x2 = 2 * x
    rel2 = abs(float((_phi(x2, order) - _phi(x2, 60)) / _phi(x2, 60)))
    assert rel2 > np.finfo(dtype).eps / 8


def test_coefficients_reproduce_the_weights_on_the_head():
    rng = np.random.default_rng(1)
    lam = np.sort(np.concatenate([[-1e-3, 0.0], rng.uniform(1e-3, 1e3, 200)]))
    u = np.array([0.0, 1e-9, 1e-6, 1e-4, 1e-2, 1.0, np.inf, -1e-3])
    w = inv_weights(np, lam, u, 1)
    for order in ORDERS:
        p, ends = head_ends(lam, u, order, np.float64)
        assert p == 2   # -1e-3 and 0 are clipped
        for t, e in enumerate(ends):
            if e == p:
                continue
            sigma = lam[e - 1]
            c = coefficients(u[t:t + 1], order, sigma)[0]
            r = lam[p:e] / sigma
            series = sum(c[j] * r ** j for j in range(order))
            np.testing.assert_allclose(series, w[t, p:e], rtol=1e-15, atol=0)
        assert ends[0] == len(lam)                     # t = 0: everything (weights 0)
        assert ends[-2] == p and ends[-1] == p         # t = inf, t < 0: nothing


def _brute(ends, p, n, fold):
    cands = sorted(set(ends.values()) - {p})
    best = None
    for k in range(len(cands) + 1):
        for sub in itertools.combinations(cands, k):
            steps = [p] + list(sub)
            use = {t: max(s for s in steps if s <= e) for t, e in ends.items()}
            cost = fold * (max(steps) - p) + _plan.STEP_COST * fold * len(sub) + \
                sum(n - b for b in use.values())
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_breakpoints_are_optimal(seed):
    rng = np.random.default_rng(seed)
    n, p = 3000, int(rng.integers(0, 3))
    fold = int(rng.choice([1, 4, 8]))
    times = int(rng.integers(1, 9))
    ends = {t: int(min(n, p + rng.choice([0, 1, 5, 60, 900, 2500, 2997]) +
                       rng.integers(0, 3))) for t in range(times)}
    use, cost = _plan.breakpoints(ends, p, n, fold)
    assert cost == _brute(ends, p, n, fold)
    for t, e in ends.items():
        assert p <= use[t] <= e
