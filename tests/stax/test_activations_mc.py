"""Monte-Carlo checks of every nonlinearity (the registry of test_activations.py).

1. The dual itself: E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for (u, v) ~ N(0, [[k11, k12],
   [k12, k22]]) from 2e6 samples, with independent phi/phi' (not the library's). The tolerance
   is 6 standard errors of the estimate plus 2e-3 of its scale, far below any wrong constant.
2. A finite Dense-phi-Dense network with the library's own fn/dfn: its empirical NNGP (through
   conftest.mc_nngp) and its empirical NTK (gradients written out by hand below) against the
   infinite-width kernels.
"""
import numpy as np
import pytest

from infwide import stax

from tests.conftest import mc_nngp
from tests.stax.test_activations import BY_ID, IDS

TRIPLES = [(1.3, 0.4, 0.7), (2.0, -1.1, 0.9), (0.8, 0.8, 0.8), (1.0, 0.0, 0.5)]
N_SAMPLES = 2_000_000


@pytest.fixture(scope="module")
def normals():
    rng = np.random.default_rng(12345)
    return rng.standard_normal((2, N_SAMPLES))


def _check(est_samples, exact, what):
    mean = est_samples.mean()
    se = est_samples.std() / np.sqrt(est_samples.size)
    scale = max(abs(exact), np.sqrt(np.mean(est_samples ** 2)))
    assert abs(mean - exact) <= 6 * se + 2e-3 * scale, (
        f"{what}: Monte Carlo {mean:.6g} +- {se:.2g}, dual {exact:.6g}")


@pytest.mark.parametrize("aid", [i for i in IDS if i != "gelu_approx"])  # its dual is Gelu's
def test_dual_matches_monte_carlo(aid, normals):
    act = BY_ID[aid]
    layer = act.make()
    for k11, k12, k22 in TRIPLES:
        if max(k11, k22) >= act.var_max / 2:
            k11, k12, k22 = (x * act.var_max / 8 for x in (k11, k12, k22))
        u = np.sqrt(k11) * normals[0]
        rho = k12 / np.sqrt(k11 * k22)
        v = np.sqrt(k22) * (rho * normals[0] + np.sqrt(max(1 - rho * rho, 0.0)) * normals[1])
        nngp, dot = layer.dual(np.array([k11]), np.array([k12]), np.array([k22]), True)
        _check(act.phi(u) * act.phi(v), nngp[0], f"{aid} E[phi phi] at {(k11, k12, k22)}")
        _check(act.dphi(u) * act.dphi(v), dot[0], f"{aid} E[phi' phi'] at {(k11, k12, k22)}")


def _empirical(net_layers, x1, x2, n_draws, seed):
    """Empirical NNGP and NTK of Dense(n, W1, b1) -> phi -> Dense(m, W2, b2) (NTK
    parameterisation), averaged over output channels and draws; gradients by hand:
    Theta = W2^2/n sum_k h_k h'_k + b2^2
            + W2^2/n sum_k w_kc^2 phi'(z_k) phi'(z'_k) (W1^2 x.x'/d + b1^2).
    """
    (n, W1, b1), act, (m, W2, b2) = net_layers
    rng = np.random.default_rng(seed)
    d = x1.shape[1]
    base = W1 ** 2 * (x1 @ x2.T) / d + b1 ** 2
    nngp = ntk = 0.0
    for _ in range(n_draws):
        Wa, ba = rng.standard_normal((d, n)), rng.standard_normal(n)
        wb2 = rng.chisquare(m, n) / m   # mean over the m output channels of W2[k, c]^2
        z1, z2 = W1 * x1 @ Wa / np.sqrt(d) + b1 * ba, W1 * x2 @ Wa / np.sqrt(d) + b1 * ba
        h1, h2 = act.fn(np, z1), act.fn(np, z2)
        g1, g2 = act.dfn(np, z1), act.dfn(np, z2)
        hh = W2 ** 2 * (h1 @ h2.T) / n
        nngp = nngp + hh + b2 ** 2
        gg = W2 ** 2 * ((g1 * wb2) @ g2.T) / n
        ntk = ntk + hh + b2 ** 2 + gg * base
    return nngp / n_draws, ntk / n_draws


@pytest.mark.parametrize("aid", IDS)
def test_finite_network_monte_carlo(aid):
    act = BY_ID[aid]
    rng = np.random.default_rng(99)
    x1, x2 = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    W1, b1 = (1.0, 0.3) if np.isinf(act.var_max) else (0.8, 0.1)
    net = stax.serial(stax.Dense(2048, W_std=W1, b_std=b1), act.make(),
                      stax.Dense(256, W_std=1.2, b_std=0.2))
    k = net.kernel_fn(x1, x2)
    nngp_e, ntk_e = _empirical(((2048, W1, b1), act.make(), (256, 1.2, 0.2)), x1, x2, 200, 5)
    k11 = net.kernel_fn(x1, None)
    k22 = net.kernel_fn(x2, None)
    for name, emp, exact in (("nngp", nngp_e, k.nngp), ("ntk", ntk_e, k.ntk)):
        scale = np.sqrt(np.outer(np.diag(getattr(k11, name)), np.diag(getattr(k22, name))))
        err = np.max(np.abs(emp - exact) / scale)
        assert err < 0.03, f"{aid} {name}: relative error {err:.3g}"


def test_library_mc_nngp_of_a_deeper_network():
    """conftest.mc_nngp through the library's own init/apply, two nonlinearities deep."""
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for act in (stax.Erf(0.8, 1.3, 0.1), stax.Gelu(), stax.RectifiedMonomial(2)):
        net = stax.serial(stax.Dense(512, W_std=1.2, b_std=0.1), act,
                          stax.Dense(512, W_std=1.1, b_std=0.1), act, stax.Dense(256))
        emp = mc_nngp(net, x1, x2, 40)[:, :, 0, 0]
        exact = net.kernel_fn(x1, x2, "nngp")
        scale = np.sqrt(np.outer(np.diag(net.kernel_fn(x1, None, "nngp")),
                                 np.diag(net.kernel_fn(x2, None, "nngp"))))
        assert np.max(np.abs(emp - exact) / scale) < 0.05, act.name


def test_sign_full_spatial_cov1_by_monte_carlo():
    """Neural Tangents' Sign sets every nonzero entry of a full spatial cov1 to 1 (its fixture
    disagrees here); the finite network agrees with infwide's 1 - 2 theta / pi."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 4, 2))
    net = stax.serial(stax.Conv(256, (2, 2), padding="SAME", W_std=1.2, b_std=0.1), stax.Sign(),
                      stax.Conv(256, (2, 2), W_std=0.9, b_std=0.05), stax.Sign(),
                      stax.GlobalAvgPool(), stax.Dense(256))
    cov1 = net.kernel_fn(x, None).cov1
    emp = np.diagonal(mc_nngp(net, x, x, 30)[:, :, 0, 0])
    np.testing.assert_allclose(emp, cov1, rtol=0.1)
    assert np.all(cov1 < 0.3)   # NT's value is about 1 here
