"""predict._tails: per-time sums that share converged eigen-directions equal the direct sums."""
import numpy as np
import pytest

from infwide.predict._spectral import inv_weights
from infwide.predict._tails import per_time_sums, tail_starts


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
