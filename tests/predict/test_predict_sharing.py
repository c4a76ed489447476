"""predict._sharing: per-time sums that share converged eigen-directions equal the direct sums."""
import numpy as np
import pytest

from infwide.predict._spectral import inv_weights
from infwide.predict._sharing import per_time_sums, tail_starts


def _block(z):
    return lambda s, lo, hi: (s @ z[lo:hi], s @ s.T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tmax", [1e-2, 1e2, 1e6])   # none, some, all directions converged
def test_shared_tails_match_direct_sums(dtype, tmax):
    rng = np.random.default_rng(0)
    n, m, r = 60, 7, 9
    lam = np.sort(rng.uniform(0.01, 50.0, n)).astype(dtype)
    tau = rng.permutation(np.logspace(-3, np.log10(tmax), 12)).astype(dtype)
    w = inv_weights(np, lam, tau, 1)
    ref = int(np.argmax(tau))
    a = rng.standard_normal((m, n)).astype(dtype)
    z = rng.standard_normal((n, r)).astype(dtype)
    seen = set()
    for t, (x, g) in per_time_sums(np, a, w, ref, _block(z)):
        s = a * w[t][None, :]
        tol = 50 * np.finfo(dtype).eps
        np.testing.assert_allclose(x, s @ z, rtol=tol, atol=tol * np.abs(s @ z).max())
        np.testing.assert_allclose(g, s @ s.T, rtol=tol, atol=tol * np.abs(s @ s.T).max())
        seen.add(t)
    assert seen == set(range(len(tau)))
    starts = tail_starts(np, w, ref)
    assert starts[ref] == 0
    if tmax == 1e6:   # the longest times share every direction with the latest one
        assert sorted(starts)[:3] == [0, 0, 0]
    if tmax == 1e-2:  # nothing converged: only the latest time itself shares everything
        assert sorted(starts)[1] == n


def test_tail_is_the_trailing_run_of_equal_weights():
    w = np.array([[1., 2., 3., 4.], [0., 2., 3., 4.], [1., 0., 3., 0.], [0., 0., 0., 4.]])
    assert tail_starts(np, w, 0) == [0, 1, 4, 3]


def _gram(s, lo, hi):
    return (s @ s.T,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("span", [(-4, -1), (-3, 3), (-1, 5)])   # heads, both, tails
@pytest.mark.parametrize("step_cost", [0, None])                 # every step / the model's
def test_shared_heads_and_tails_match_direct_sums(dtype, span, step_cost, monkeypatch):
    from infwide.predict import _plan
    if step_cost is not None:
        monkeypatch.setattr(_plan, "STEP_COST", step_cost)
    rng = np.random.default_rng(3)
    n, m, r = 400, 5, 6
    lam = np.sort(np.concatenate([[-1e-4, 0.0], 10 ** rng.uniform(-2, 3, n - 2)])).astype(dtype)
    t = rng.permutation(np.concatenate([[0.0, np.inf], np.logspace(*span, 10)]))
    tau = t.astype(dtype)
    a = rng.standard_normal((m, n)).astype(dtype)
    z = rng.standard_normal((n, r)).astype(dtype)
    ref = int(np.argmax(tau))
    tol = 200 * np.finfo(dtype).eps
    # linear blocks, weights h(u) (the NTK covariance); quadratic, sqrt(h(2u)) (the NNGP one)
    z2 = rng.standard_normal((n, m)).astype(dtype)

    def linear(s, lo, hi):
        return s @ z[lo:hi], s @ z2[lo:hi]

    for power, u, block in ((1, t, linear), (2, 2 * t, _gram)):
        w = inv_weights(np, lam, u.astype(dtype), 1)
        w = w if power == 1 else np.sqrt(w)
        seen = set()
        for i, sums in per_time_sums(np, a, w, ref, block, lam, u, power):
            s = a * w[i][None, :]
            for got, want in zip(sums, block(s, 0, n)):
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
            seen.add(i)
        assert seen == set(range(len(t)))


def test_the_plan_shares_heads_of_a_long_trajectory():
    """The benchmark's shape of problem (a bulk of small eigenvalues and a few large ones,
    times over decades): most columns are shared, in a few steps."""
    from infwide.predict._plan import plan
    rng = np.random.default_rng(4)
    n = 3000
    lam = np.sort(np.concatenate([rng.uniform(0.25, 0.8, 2400), 10 ** rng.uniform(0, 3.4, 600)]))
    u = np.logspace(-1, 4, 20) / 30000
    pl = plan(lam, u, [n] * 20, np.float32, n)
    assert pl.order is not None and len(pl.early) >= 10
    assert pl.cost < 0.5 * 20 * n
    assert len(set(pl.head.values())) <= 6
