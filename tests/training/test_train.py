"""Training finite networks without autodiff: gradients against finite differences, the two
ensemble engines against each other, linearised dynamics against predict, and bad inputs."""
import numpy as np
import pytest

import infwide
from infwide import predict, stax
from infwide.training import cross_entropy_loss, mse_loss
from infwide.params import tree_leaves, tree_unflatten_like


def _mlp(width=16, out=2):
    return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.2), stax.Relu(),
                       stax.Dense(width, W_std=1.5, b_std=0.2), stax.Erf(),
                       stax.Dense(out, W_std=1.5, b_std=0.2))


def _data(n=6, d=3, k=2, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)), rng.standard_normal((n, k)),
            rng.standard_normal((n_test, d)), rng.standard_normal((n_test, k)))


# -- vjp / value_and_grad --------------------------------------------------------------------
def test_vjp_matches_finite_differences():
    net = _mlp(5)
    x = np.random.default_rng(1).standard_normal((3, 4))
    _, params = net.init_fn(0, x.shape)
    y, vjp_fn = infwide.vjp(net.apply_fn, params, x)
    np.testing.assert_array_equal(y, net.apply_fn(params, x))
    rng = np.random.default_rng(2)
    ct = rng.standard_normal(y.shape)
    d_params, d_x = vjp_fn(ct)
    # directional derivatives of <ct, f> along random directions in params and in x
    v = [rng.standard_normal(a.shape) for a in tree_leaves(params)]
    vx = rng.standard_normal(x.shape)
    shifted = lambda c: tree_unflatten_like(params, [a + c * d for a, d in
                                                      zip(tree_leaves(params), v)])
    pair = lambda p, xx: float((ct * net.apply_fn(p, xx)).sum())
    eps = 1e-6
    fd_p = (pair(shifted(eps), x) - pair(shifted(-eps), x)) / (2 * eps)
    fd_x = (pair(params, x + eps * vx) - pair(params, x - eps * vx)) / (2 * eps)
    assert np.isclose(sum(float((g * d).sum()) for g, d in zip(tree_leaves(d_params), v)),
                      fd_p, rtol=1e-6)
    assert np.isclose(float((d_x * vx).sum()), fd_x, rtol=1e-6)
    with pytest.raises(ValueError, match="cotangent must have the output's shape"):
        vjp_fn(np.ones((3, 3)))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_value_and_grad_matches_finite_differences(loss):
    net = _mlp(6, 3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2))
    y = rng.standard_normal((4, 3)) if loss == "mse" else np.eye(3)[[0, 2, 1, 1]]
    _, params = net.init_fn(1, x.shape)
    value, g = infwide.value_and_grad(net, loss)(params, x, y)
    fn = mse_loss if loss == "mse" else cross_entropy_loss
    assert np.isclose(value, fn(net.apply_fn(params, x), y))
    for a, d in zip(tree_leaves(params), tree_leaves(g)):
        for idx in list(np.ndindex(a.shape))[:6]:
            old = a[idx]
            a[idx] = old + 1e-6
            up = fn(net.apply_fn(params, x), y)
            a[idx] = old - 1e-6
            down = fn(net.apply_fn(params, x), y)
            a[idx] = old
            assert np.isclose(d[idx], (up - down) / 2e-6, rtol=1e-5, atol=1e-8)
    only = infwide.grad(net, loss)(params, x, y)
    for a, b in zip(tree_leaves(only), tree_leaves(g)):
        np.testing.assert_array_equal(a, b)


def test_mse_is_nt_normalisation():
    fx, y = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]), np.zeros((3, 2))
    value, grad = mse_loss.value_and_grad(fx, y)
    assert value == pytest.approx(30.0 / (2 * 6))
    np.testing.assert_allclose(grad, fx / 6)


# -- ensembles --------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_stacked_and_loop_engines_agree(momentum):
    net = stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.FanOut(2),
                      stax.parallel(stax.serial(stax.Relu(), stax.Dense(32)), stax.Identity()),
                      stax.FanInSum(), stax.Gelu(), stax.Dense(2, b_std=0.1))
    x, y, xt, yt = _data()
    members = infwide.init_ensemble(net.init_fn, 4, x.shape, 3)
    kw = dict(t=[0.0, 0.5, 2.0], learning_rate=0.05, momentum=momentum, x_test=xt, y_test=yt)
    a = infwide.train_mse(net, members, x, y, engine="stacked", **kw)
    b = infwide.train_mse(net, members, x, y, engine="loop", **kw)
    assert a.fx_train.shape == (3, 3, 6, 2) and a.fx_test.shape == (3, 3, 4, 2)
    assert a.loss_train.shape == (3, 3) and a.loss_test.shape == (3, 3)
    np.testing.assert_array_equal(a.steps, [0, 10, 40])
    for f in ("fx_train", "fx_test", "loss_train", "loss_test"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-10, atol=1e-12)
    for pa, pb in zip(a.params, b.params):
        for u, v in zip(tree_leaves(pa), tree_leaves(pb)):
            np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    assert np.all(a.loss_train[-1] < a.loss_train[0])
    # the members' own parameters are never modified
    np.testing.assert_array_equal(a.fx_train[0, 0], net.apply_fn(members[0], x))


def test_conv_network_trains_with_the_loop_engine():
    net = stax.serial(stax.Conv(8, (2, 2), padding="SAME", b_std=0.1), stax.Relu(),
                      stax.AvgPool((2, 2)), stax.Flatten(), stax.Dense(1))
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((4, 4, 4, 2)), rng.standard_normal((4, 1))
    members = infwide.init_ensemble(net, 0, x.shape, 2)
    lr = 0.5 * infwide.stable_learning_rate(net, members[0], x, y.size)
    traj = infwide.train_mse(net, members, x, y, [0.0, 50 * lr], learning_rate=lr)
    assert np.all(traj.loss_train[1] < 0.5 * traj.loss_train[0])


def test_follows_linearised_dynamics_of_predict():
    """A wide network trained with a small learning rate follows predict.gradient_descent_mse
    with its own empirical NTK, on the training and test points, on the same time axis."""
    x, y, xt, _ = _data()
    net = stax.serial(stax.Dense(4096, W_std=1.5, b_std=0.2), stax.Relu(),
                      stax.Dense(2, W_std=1.5, b_std=0.2))
    _, params = net.init_fn(0, x.shape)
    ntk_fn = infwide.empirical_ntk_fn(net)
    k_train, k_test = ntk_fn(x, None, params), ntk_fn(xt, x, params)
    lr = predict.max_learning_rate(k_train, y.size) / 200
    traj = infwide.train_mse(net, params, x, y, [0.0, 0.5, 2.0, 5.0, 10.0],
                             learning_rate=lr, x_test=xt)
    f0, f0_test = net.apply_fn(params, x), net.apply_fn(params, xt)
    predict_fn = predict.gradient_descent_mse(k_train, y)
    train, test = predict_fn(traj.t, f0, f0_test, k_test)
    scale = np.abs(y - f0).max()
    err_train = np.abs(traj.fx_train[:, 0] - train).max() / scale
    err_test = np.abs(traj.fx_test[:, 0] - test).max() / scale
    assert err_train < 1.5e-2 and err_test < 1.5e-2, (err_train, err_test)
    # ... and the comparison can fail: twice the time, or NT's loss normalised by N only
    wrong_t, _ = predict_fn(2 * traj.t, f0, f0_test, k_test)
    assert np.abs(traj.fx_train[:, 0] - wrong_t).max() / scale > 0.1
    wrong_norm, _ = predict.gradient_descent_mse(k_train * 2, y)(traj.t, f0, f0_test, k_test)
    assert np.abs(traj.fx_train[:, 0] - wrong_norm).max() / scale > 0.1


def test_momentum_follows_predict_gradient_descent():
    """Heavy-ball momentum follows NT's momentum ODE (time in units of sqrt(lr): the steps)."""
    x, y, _, _ = _data(seed=7)
    net = stax.serial(stax.Dense(2048, W_std=1.5, b_std=0.2), stax.Relu(),
                      stax.Dense(2, W_std=1.5, b_std=0.2))
    _, params = net.init_fn(1, x.shape)
    k_train = infwide.empirical_ntk_fn(net)(x, None, params)
    lr = predict.max_learning_rate(k_train, y.size) / 400
    traj = infwide.train_mse(net, params, x, y, np.array([0, 40, 120]) * lr, learning_rate=lr,
                             momentum=0.9)
    f0 = net.apply_fn(params, x)
    ref = predict.gradient_descent(predict.mse, k_train, y, learning_rate=lr, momentum=0.9)(
        traj.steps.astype(float), f0)
    scale = np.abs(y - f0).max()
    assert np.abs(traj.fx_train[:, 0] - ref).max() / scale < 3e-2


# -- bad inputs -------------------------------------------------------------------------------
def test_learning_rate_above_the_bound_is_refused():
    x, y, _, _ = _data()
    net = _mlp(64)
    _, params = net.init_fn(0, x.shape)
    bound = infwide.stable_learning_rate(net, params, x, y.size)
    with pytest.raises(ValueError, match=r"predict\.max_learning_rate"):
        infwide.train_mse(net, params, x, y, [10 * bound], learning_rate=3 * bound)
    with pytest.raises(ValueError, match=r"diverged at step \d+.*predict\.max_learning_rate"):
        infwide.train_mse(net, params, x, y, [200 * bound], learning_rate=3 * bound,
                          check_learning_rate=False)


def test_bad_training_inputs():
    x, y, _, _ = _data()
    net = _mlp(8)
    _, params = net.init_fn(0, x.shape)
    other = _mlp(9).init_fn(0, x.shape)[1]
    with pytest.raises(ValueError, match=r"member 1.*do not fit the network"):
        infwide.train_mse(net, [params, other], x, y, [1.0], learning_rate=0.01)
    with pytest.raises(ValueError, match="`y_train` must have the network output's shape"):
        infwide.train_mse(net, params, x, y[:, :1], [1.0], learning_rate=0.01)
    with pytest.raises(ValueError, match="finite non-negative times"):
        infwide.train_mse(net, params, x, y, [np.inf], learning_rate=0.01)
    with pytest.raises(ValueError, match="learning_rate"):
        infwide.train_mse(net, params, x, y, [1.0], learning_rate=-1.0)
    with pytest.raises(TypeError, match="built with infwide.stax"):
        infwide.train_mse(lambda p, x: x, params, x, y, [1.0], learning_rate=0.01)
    with pytest.raises(TypeError, match="built with infwide.stax"):
        infwide.value_and_grad(np.sin)
    with pytest.raises(ValueError, match="unknown loss"):
        infwide.value_and_grad(net, "hinge")
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        infwide.train_mse(net, params, x_nan, y, [1.0], learning_rate=0.01)
