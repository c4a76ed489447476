"""infwide.predict: the closed forms against the dynamics they solve, limits and identities.

- t = 0 gives the prior / the given initial outputs; t -> inf equals gp_inference (Cholesky);
- the eigendecomposition and Cholesky paths agree (t=np.inf vs t=None);
- the closed forms equal a small-step integration of the linearised dynamics, for the mean
  and for the ensemble covariance (a matrix ODE for the map from initial outputs);
- ensemble covariances are symmetric PSD at every time;
- max_learning_rate: discrete GD at 0.9x converges, at 1.1x diverges (with and without momentum);
- gradient_descent (ODE) with cross-entropy and momentum equals an RK4 simulation of NT's
  full state, and discrete small-step GD.
"""
import collections

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from infwide import predict, stax

KT = collections.namedtuple("Kernel", "nngp ntk")
N, M, C = 10, 4, 3


def _psd(rng, n_all, p=30, scale=1.0):
    j = rng.standard_normal((n_all, p)) * scale
    return j @ j.T / p


@pytest.fixture(scope="module")
def prob():
    """Joint (train + test) NNGP and NTK from a Dense-ReLU-Dense network, targets, outputs."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N + M, 5))
    net = stax.serial(stax.Dense(64, W_std=1.4, b_std=0.1), stax.Relu(),
                      stax.Dense(1, W_std=1.2, b_std=0.2))
    k = net.kernel_fn(x, None, ("nngp", "ntk"))
    return dict(x=x, kernel_fn=net.kernel_fn, nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk),
                y=rng.standard_normal((N, C)), f0=0.3 * rng.standard_normal((N, C)),
                g0=0.3 * rng.standard_normal((M, C)))


def blocks(k):
    return k[:N, :N], k[N:, :N], k[N:, N:]


def test_t0_gives_initial_outputs_and_prior(prob):
    dd, td, tt = blocks(prob["ntk"])
    pred = predict.gradient_descent_mse(dd, prob["y"], diag_reg=0.1)
    f, g = pred(0.0, prob["f0"], prob["g0"], td)
    np.testing.assert_allclose(f, prob["f0"], atol=1e-14)
    np.testing.assert_allclose(g, prob["g0"], atol=1e-14)
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"])
    out = ens(0.0, prob["x"][N:], None, True)
    prior = blocks(prob["nngp"])[2]
    for g in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(out, g).mean, 0, atol=1e-13)
        np.testing.assert_allclose(getattr(out, g).covariance, prior, rtol=1e-12, atol=1e-13)
    train = ens(0.0, None, "ntk", True)
    np.testing.assert_allclose(train.covariance, blocks(prob["nngp"])[0], rtol=1e-10)


@pytest.mark.parametrize("reg", [0.0, 1e-2])
def test_infinite_time_equals_gp_inference(prob, reg):
    k_dd = KT(*(blocks(prob[g])[0] for g in ("nngp", "ntk")))
    k_td = KT(*(blocks(prob[g])[1] for g in ("nngp", "ntk")))
    k_tt = KT(*(blocks(prob[g])[2] for g in ("nngp", "ntk")))
    gp = predict.gp_inference(k_dd, prob["y"], diag_reg=reg)(None, k_td, k_tt)
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"],
                                                diag_reg=reg)
    for t in (np.inf, 1e9):  # eigendecomposition path, and a huge finite time
        out = ens(t, prob["x"][N:], None, True)
        for g in ("nngp", "ntk"):
            np.testing.assert_allclose(getattr(out, g).mean, getattr(gp, g).mean, rtol=1e-7,
                                       atol=1e-9)
            np.testing.assert_allclose(getattr(out, g).covariance, getattr(gp, g).covariance,
                                       rtol=1e-6, atol=1e-8)
    # t=None goes through gp_inference's Cholesky solve and must agree with it exactly
    out = ens(None, prob["x"][N:], None, True)
    for g in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(out, g).covariance, getattr(gp, g).covariance,
                                   rtol=1e-12)


@pytest.mark.parametrize("reg,absolute", [(0.0, False), (0.3, False), (0.05, True)])
def test_eigh_and_cholesky_paths_agree(prob, reg, absolute):
    dd, td, _ = blocks(prob["ntk"])
    pred = predict.gradient_descent_mse(dd, prob["y"], diag_reg=reg,
                                        diag_reg_absolute_scale=absolute)
    chol = pred(None, prob["f0"], prob["g0"], td)
    eig = pred(np.inf, prob["f0"], prob["g0"], td)
    for a, b in zip(chol, eig):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-11)
    # the infinite-time test prediction is the regularised kernel regression on the residual
    r = reg * (1.0 if absolute else np.trace(dd) / N)
    ref = prob["g0"] + td @ np.linalg.solve(dd + r * np.eye(N), prob["y"] - prob["f0"])
    np.testing.assert_allclose(chol[1], ref, rtol=1e-10)


def test_diag_reg_relative_is_mean_diagonal(prob):
    """NT's code multiplies diag_reg by trace(K)/n (its docstring says mean(trace(K)))."""
    dd, td, _ = blocks(prob["ntk"])
    rel = predict.gradient_descent_mse(dd, prob["y"], diag_reg=0.2)(3.0, prob["f0"],
                                                                     prob["g0"], td)
    ab = predict.gradient_descent_mse(dd, prob["y"], diag_reg=0.2 * np.trace(dd) / N,
                                      diag_reg_absolute_scale=True)(3.0, prob["f0"],
                                                                    prob["g0"], td)
    np.testing.assert_allclose(rel[1], ab[1], rtol=1e-12)


def _flow_matrix(kern, lr, size, ts):
    """Integrate dM/dt = -(lr/size) kern[:, :N] M[:N]  (M(0) = I) over the joint train+test
    outputs: f_t = M_t f_0 + (I - M_t) [y-part]. Returns M at ``ts``."""
    n_all = kern.shape[0]

    def rhs(_, m):
        m = m.reshape(n_all, n_all)
        return (-(lr / size) * kern[:, :N] @ m[:N]).reshape(-1)
    sol = solve_ivp(rhs, (0, ts[-1]), np.eye(n_all).reshape(-1), t_eval=ts, rtol=1e-11,
                    atol=1e-13, method="DOP853")
    return [sol.y[:, i].reshape(n_all, n_all) for i in range(len(ts))]


def test_mean_matches_integrated_dynamics(prob):
    dd, td, _ = blocks(prob["ntk"])
    lr, ts = 0.7, np.array([0.3, 2.0, 15.0])
    f, g = predict.gradient_descent_mse(dd, prob["y"], learning_rate=lr)(ts, prob["f0"],
                                                                           prob["g0"], td)
    size = prob["y"].size

    def rhs(_, s):
        ft = s[:N * C].reshape(N, C)
        grad = ft - prob["y"]
        return np.concatenate([(-(lr / size) * dd @ grad).ravel(),
                               (-(lr / size) * td @ grad).ravel()])
    sol = solve_ivp(rhs, (0, ts[-1]), np.concatenate([prob["f0"].ravel(), prob["g0"].ravel()]),
                    t_eval=ts, rtol=1e-11, atol=1e-13, method="DOP853")
    np.testing.assert_allclose(f, sol.y[:N * C].T.reshape(-1, N, C), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g, sol.y[N * C:].T.reshape(-1, M, C), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("g", ["nngp", "ntk"])
def test_ensemble_covariance_matches_integrated_dynamics(prob, g):
    """Ensemble of f_0 ~ GP(0, NNGP) trained with kernel NTK ('ntk') or NNGP ('nngp'):
    Cov(f_t) = M_t K M_t^T with M_t the flow map of the linear dynamics."""
    lr, ts = 1.3, np.array([0.5, 4.0, 30.0])
    size = N * C
    maps = _flow_matrix(prob[g], lr, size, ts)
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"],
                                                learning_rate=lr)
    test = ens(ts, prob["x"][N:], g, True)
    train = ens(ts, None, g, True)
    for i, m_t in enumerate(maps):
        cov = m_t @ prob["nngp"] @ m_t.T
        # f_t = M_t f_0 + (train: y - M_DD y, test: -M_xD y); f_0 has mean zero
        mean_train = prob["y"] - m_t[:N, :N] @ prob["y"]
        mean_test = -m_t[N:, :N] @ prob["y"]
        np.testing.assert_allclose(test.covariance[i], cov[N:, N:], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(train.covariance[i], cov[:N, :N], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(test.mean[i], mean_test, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(train.mean[i], mean_train, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("g", ["nngp", "ntk"])
def test_shared_per_time_sums_match_integrated_dynamics(prob, g, monkeypatch):
    """A trajectory over decades with every shared step taken (step cost 0): the heads come
    from the short-time series and the converged tails are shared (predict._sharing)."""
    from infwide.predict import _plan, _sharing
    monkeypatch.setattr(_plan, "STEP_COST", 0)
    plans = []

    def spy(*args):
        plans.append(_plan.plan(*args))
        return plans[-1]
    monkeypatch.setattr(_sharing, "plan", spy)
    lr, ts = 1.3, np.concatenate([np.logspace(-5, -2, 12), np.logspace(-1, 4, 8)])
    size = N * C
    maps = _flow_matrix(prob[g], lr, size, ts)
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"],
                                                learning_rate=lr)
    test = ens(ts, prob["x"][N:], g, True)
    assert any(pl.order is not None and pl.early for pl in plans)
    assert any(pl.late and min(pl.tail.values()) < N for pl in plans)
    for i, m_t in enumerate(maps):
        cov = m_t @ prob["nngp"] @ m_t.T
        np.testing.assert_allclose(test.covariance[i], cov[N:, N:], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(test.mean[i], -m_t[N:, :N] @ prob["y"], rtol=1e-7,
                                   atol=1e-9)


def test_ensemble_covariances_symmetric_psd(prob):
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"],
                                                learning_rate=2.0, diag_reg=1e-3)
    ts = np.concatenate([[0.0], np.logspace(-2, 6, 12), [np.inf]])
    for x_test in (prob["x"][N:], None):
        out = ens(ts, x_test, None, True)
        for g in ("nngp", "ntk"):
            cov = getattr(out, g).covariance
            for c in cov:
                np.testing.assert_array_equal(c, c.T)
                lam = np.linalg.eigvalsh(c)
                assert lam[0] >= -1e-9 * max(lam[-1], 1.0), (g, lam[0], lam[-1])


def _discrete_gd(ntk, y, lr, steps, momentum=0.0):
    """Discrete (heavy-ball) GD on 1/(2|y|) ||f - y||^2 in function space; final residual."""
    f = np.zeros_like(y)
    v = np.zeros_like(y)
    for _ in range(steps):
        v = momentum * v - lr / y.size * ntk @ (f - y)
        f = f + v
    return np.abs(f - y).max()


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_max_learning_rate_is_the_stability_edge(prob, momentum):
    dd = blocks(prob["ntk"])[0]
    y = prob["y"]
    lr = predict.max_learning_rate(dd, y_train_size=y.size, momentum=momentum)
    start = np.abs(y).max()
    assert _discrete_gd(dd, y, 0.9 * lr, 3000, momentum) < 1e-3 * start
    assert _discrete_gd(dd, y, 1.1 * lr, 300, momentum) > 1e3 * start


def _rk4_nt_state(loss, ntk, td, y, f0, g0, lr, momentum, ts, steps_per_unit=400):
    """RK4 on NT's full state (f_train, f_test[, q_train, q_test]) in solver time."""
    if momentum is None:
        scale, m = lr, None
    else:
        scale = lr ** 0.5
        m = (momentum - 1) / scale

    def deriv(s):
        f, g = s[0], s[1]
        gr = loss.grad(f, y)
        df, dg = -ntk @ gr, -td @ gr
        if m is None:
            return [df, dg]
        return [s[2], s[3], df + m * s[2], dg + m * s[3]]
    s = [f0.copy(), g0.copy()] + ([] if m is None else [np.zeros_like(f0), np.zeros_like(g0)])
    out, t_now = [], 0.0
    for t_target in np.asarray(ts) * scale:
        n_steps = max(1, int(np.ceil((t_target - t_now) * steps_per_unit)))
        h = (t_target - t_now) / n_steps
        for _ in range(n_steps):
            k1 = deriv(s)
            k2 = deriv([a + h / 2 * b for a, b in zip(s, k1)])
            k3 = deriv([a + h / 2 * b for a, b in zip(s, k2)])
            k4 = deriv([a + h * b for a, b in zip(s, k3)])
            s = [a + h / 6 * (b + 2 * c + 2 * d + e) for a, b, c, d, e in zip(s, k1, k2, k3, k4)]
        t_now = t_target
        out.append([a.copy() for a in s])
    return out


@pytest.mark.parametrize("momentum", [None, 0.8])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_gradient_descent_ode_matches_rk4(prob, momentum, loss_name):
    dd, td, _ = blocks(prob["ntk"])
    rng = np.random.default_rng(3)
    y = np.eye(C)[rng.integers(0, C, N)] if loss_name == "cross_entropy" else prob["y"]
    loss = getattr(predict, loss_name)
    ts = [0.5, 3.0, 8.0]
    pred = predict.gradient_descent(loss, dd, y, learning_rate=0.5, momentum=momentum)
    st = pred(ts, predict.ODEState(prob["f0"], prob["g0"]), None, td)
    ref = _rk4_nt_state(loss, dd, td, y, prob["f0"], prob["g0"], 0.5, momentum, ts)
    names = ("fx_train", "fx_test") + (() if momentum is None else ("qx_train", "qx_test"))
    for i, r in enumerate(ref):
        for name, want in zip(names, r):
            np.testing.assert_allclose(getattr(st, name)[i], want, rtol=1e-6,
                                       atol=1e-6 * np.abs(want).max(), err_msg=name)


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_gradient_descent_ode_matches_discrete_steps(prob, momentum):
    """Small-learning-rate discrete (heavy-ball) GD follows the ODE in NT's time units."""
    dd, td, _ = blocks(prob["ntk"])
    rng = np.random.default_rng(4)
    y = np.eye(C)[rng.integers(0, C, N)]
    lr, steps = 1e-3, 2000
    beta = 0.0 if momentum is None else 1 - (1 - momentum) * lr ** 0.5 / 0.1 ** 0.5
    f, g = prob["f0"].copy(), prob["g0"].copy()
    vf, vg = np.zeros_like(f), np.zeros_like(g)
    for _ in range(steps):
        gr = predict.cross_entropy.grad(f, y)
        vf, vg = beta * vf - lr * dd @ gr, beta * vg - lr * td @ gr
        f, g = f + vf, g + vg
    pred = predict.gradient_descent(predict.cross_entropy, dd, y, learning_rate=lr,
                                    momentum=None if momentum is None else beta)
    f_ode, g_ode = pred(steps, prob["f0"], prob["g0"], td)
    scale = np.abs(f - prob["f0"]).max()
    tol = 3e-3 if momentum is None else 5e-2
    assert np.abs(f_ode - f).max() < tol * scale
    assert np.abs(g_ode - g).max() < tol * max(np.abs(g - prob["g0"]).max(), 1e-12)


def test_gradient_descent_mse_loss_equals_closed_form(prob):
    dd, td, _ = blocks(prob["ntk"])
    ts = np.array([0.0, 1.0, 20.0, np.inf])
    closed = predict.gradient_descent_mse(dd, prob["y"], learning_rate=0.3)(
        ts, prob["f0"], prob["g0"], td)
    ode = predict.gradient_descent(predict.mse, dd, prob["y"], learning_rate=0.3)(
        ts, prob["f0"], prob["g0"], td)
    for a, b in zip(closed, ode):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_plain_callable_loss_by_finite_differences(prob):
    dd, td, _ = blocks(prob["ntk"])
    y = np.eye(C)[np.arange(N) % C]

    def ce(fx, yy):
        z = fx - fx.max(-1, keepdims=True)
        return -np.mean((z - np.log(np.exp(z).sum(-1, keepdims=True))) * yy)
    a = predict.gradient_descent(ce, dd, y)([1.0, 4.0], prob["f0"], prob["g0"], td)
    b = predict.gradient_descent(predict.cross_entropy, dd, y)([1.0, 4.0], prob["f0"],
                                                                prob["g0"], td)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-8)


def test_gradient_descent_inf_converges_or_refuses(prob):
    dd, td, _ = blocks(prob["ntk"])
    f_inf = predict.gradient_descent(predict.mse, dd, prob["y"])(None, prob["f0"])
    np.testing.assert_allclose(f_inf, prob["y"], atol=1e-5)
    y = np.eye(C)[np.arange(N) % C]
    with pytest.raises(ValueError, match="did not converge"):
        predict.gradient_descent(predict.cross_entropy, dd, y)(None, prob["f0"])


def test_t_shapes_and_leading_axes(prob):
    dd, td, _ = blocks(prob["ntk"])
    pred = predict.gradient_descent_mse(dd, prob["y"])
    t = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.inf]])
    f, g = pred(t, prob["f0"], prob["g0"], td)
    assert f.shape == (2, 3, N, C) and g.shape == (2, 3, M, C)
    f1, g1 = pred(4.0, prob["f0"], prob["g0"], td)
    np.testing.assert_allclose(f[1, 1], f1, rtol=1e-14)
    np.testing.assert_allclose(g[1, 1], g1, rtol=1e-14)
    ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"])
    out = ens(t, prob["x"][N:], "ntk", True)
    assert out.mean.shape == (2, 3, M, C) and out.covariance.shape == (2, 3, M, M)


def test_float32_factorisation_close_to_float64(prob):
    k32 = prob["kernel_fn"](prob["x"].astype(np.float32), None, ("nngp", "ntk"))
    assert k32.ntk.dtype == np.float32
    x32, y32 = prob["x"][:N].astype(np.float32), prob["y"].astype(np.float32)
    ts = np.array([1.0, 10.0])
    outs = {}
    for fd in (None, np.float32):
        ens = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], x32, y32,
                                                    factor_dtype=fd)
        outs[fd] = ens(ts, prob["x"][N:].astype(np.float32), None, True)
        assert outs[fd].ntk.covariance.dtype == np.float32
        assert outs[fd].ntk.mean.dtype == np.float32
    ref = predict.gradient_descent_mse_ensemble(prob["kernel_fn"], prob["x"][:N], prob["y"])(
        ts, prob["x"][N:], None, True)
    for fd, out in outs.items():
        for g in ("nngp", "ntk"):
            for part in ("mean", "covariance"):
                r = getattr(getattr(ref, g), part)
                np.testing.assert_allclose(getattr(getattr(out, g), part), r, rtol=1e-3,
                                           atol=1e-4 * np.abs(r).max())
