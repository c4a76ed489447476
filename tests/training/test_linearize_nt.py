"""``linearize``, ``taylor_expand`` and ``empirical_ntk_vp_fn`` against Neural Tangents
(tests/nt_fixtures/make_linearize.py), and the linearised model trained by gradient descent
against ``predict.gradient_descent_mse`` with its own empirical NTK on a wide network."""
import json
import os

import numpy as np
import pytest

import infwide
from infwide import predict, stax
from infwide.params import tree_leaves, tree_map, tree_unflatten_like

HERE = os.path.dirname(os.path.abspath(__file__))
NT = np.load(os.path.join(HERE, "..", "nt_fixtures", "linearize.npz"))
TABLE = json.loads(str(NT["table"]))


def _load(name):
    net = eval(TABLE[name]["text"])
    x1, x2 = NT[f"{name}/x1"], NT[f"{name}/x2"]
    _, ours = net.init_fn(0, x1.shape)
    n = TABLE[name]["n_params"]
    p0 = tree_unflatten_like(ours, [NT[f"{name}/p0_{i}"].copy() for i in range(n)])
    p1 = tree_unflatten_like(ours, [NT[f"{name}/p1_{i}"].copy() for i in range(n)])
    assert [a.shape for a in tree_leaves(ours)] == [a.shape for a in tree_leaves(p0)], name
    return net, p0, p1, x1, x2


@pytest.mark.parametrize("name", sorted(TABLE))
def test_linearize_and_taylor_match_nt(name):
    net, p0, p1, x1, _ = _load(name)
    np.testing.assert_allclose(net.apply_fn(p1, x1), NT[f"{name}/f"], rtol=1e-12, atol=1e-12)
    lin = infwide.linearize(net.apply_fn, p0)(p1, x1)
    np.testing.assert_allclose(lin, NT[f"{name}/lin"], rtol=1e-10, atol=1e-12)
    assert np.abs(lin - NT[f"{name}/f"]).max() > 1e-3   # the displacement is not negligible
    for d in TABLE[name]["degrees"]:
        got = infwide.taylor_expand(net, p0, d)(p1, x1)
        tol = 1e-10 if d <= 1 else 1e-7
        np.testing.assert_allclose(got, NT[f"{name}/taylor{d}"], rtol=tol, atol=tol,
                                   err_msg=f"{name} degree {d}")


@pytest.mark.parametrize("name", sorted(TABLE))
def test_empirical_ntk_vp_matches_nt(name):
    net, p0, _, x1, x2 = _load(name)
    vp = infwide.empirical_ntk_vp_fn(net.apply_fn, x1, x2, p0)
    np.testing.assert_allclose(vp(NT[f"{name}/ct"]), NT[f"{name}/ntk_vp"], rtol=1e-10,
                               atol=1e-12)


def test_taylor_degree_zero_and_errors():
    net, p0, p1, x1, _ = _load("fc")
    np.testing.assert_array_equal(infwide.taylor_expand(net, p0, 0)(p1, x1),
                                  net.apply_fn(p0, x1))
    with pytest.raises(ValueError, match="degree"):
        infwide.taylor_expand(net, p0, -1)
    with pytest.raises(TypeError, match="W_std"):
        infwide.linearize(net, p0)(p1, x1, W_std=2.0)
    with pytest.raises(NotImplementedError, match="degree >= 2"):
        infwide.grad(infwide.taylor_expand(net, p0, 2), "mse")(p1, x1, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="new_params"):
        infwide.linearize(net, p0)(p1[:1], x1)
    with pytest.raises(ValueError, match="shape of f\\(params, x2\\)"):
        infwide.empirical_ntk_vp_fn(net, x1, None, p0)(np.ones((1, 3)))


def test_linearised_training_follows_gradient_descent_mse():
    """Gradient descent on the linearised wide network (its parameter gradient is the
    constant ``J0^T``: the backward pass at ``p0``) against the closed-form dynamics of
    ``predict.gradient_descent_mse`` with the network's own empirical NTK."""
    init_fn, apply_fn, _ = stax.serial(stax.Dense(512, W_std=1.5, b_std=0.1), stax.Erf(),
                                       stax.Dense(2, b_std=0.1))
    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((6, 3)), rng.standard_normal((3, 3))
    y = rng.standard_normal((6, 2))
    _, p0 = init_fn(1, x.shape)
    f_lin = infwide.linearize(apply_fn, p0)
    grad_fn = infwide.grad(f_lin, "mse")          # NT: jax.grad(lambda p: loss(f_lin(p, x), y))
    jt = infwide.vjp(apply_fn, p0, x)[1]          # J0^T: cotangent -> parameter gradient
    lr, steps = 0.02, 500
    p = p0
    for step in range(steps):
        g = grad_fn(p, x, y)
        if step in (0, 7):   # the linearised model's gradient is the network's at p0
            for u, v in zip(tree_leaves(g), tree_leaves(jt((f_lin(p, x) - y) / y.size)[0])):
                np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)
        p = tree_map(lambda a, d: a - lr * d, p, g)
    # the full NTK over outputs (trace_axes=()): at finite width it couples the two outputs
    ntk = infwide.empirical_ntk_fn(apply_fn, trace_axes=())
    predict_fn = predict.gradient_descent_mse(ntk(x, None, p0), y, learning_rate=lr,
                                              trace_axes=())
    want_train, want_test = predict_fn(steps, apply_fn(p0, x), apply_fn(p0, xt),
                                       ntk(xt, x, p0))
    moved = np.abs(want_train - apply_fn(p0, x)).max()
    assert moved > 0.3                              # training went somewhere
    # discrete steps against continuous time: an O(lr * lambda) difference, 8e-4 here
    np.testing.assert_allclose(f_lin(p, x), want_train, atol=2e-3 * moved)
    np.testing.assert_allclose(f_lin(p, xt), want_test, atol=2e-3 * moved)
    # the discrete linear dynamics exactly: f_t = y + (I - lr Theta / (N K))^t (f_0 - y)
    theta = ntk(x, None, p0).transpose(0, 2, 1, 3).reshape(12, 12) / y.size
    a = np.linalg.matrix_power(np.eye(12) - lr * theta, steps)
    exact = y.ravel() + a @ (apply_fn(p0, x) - y).ravel()
    np.testing.assert_allclose(f_lin(p, x).ravel(), exact, rtol=1e-9, atol=1e-10)


def test_linearize_with_dropout_uses_one_mask_per_call():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(16, b_std=0.1), stax.Dropout(0.6), stax.Erf(),
                                       stax.Dense(2))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3))
    _, p0 = init_fn(2, x.shape)
    dp = tree_map(lambda a: rng.standard_normal(a.shape), p0)
    f_lin = infwide.linearize(apply_fn, p0)
    np.testing.assert_array_equal(f_lin(p0, x, rng=3), apply_fn(p0, x, rng=3))
    eps = 1e-6
    fd = (apply_fn(tree_map(lambda a, d: a + eps * d, p0, dp), x, rng=3) -
          apply_fn(tree_map(lambda a, d: a - eps * d, p0, dp), x, rng=3)) / (2 * eps)
    p1 = tree_map(lambda a, d: a + d, p0, dp)
    np.testing.assert_allclose(f_lin(p1, x, rng=3) - f_lin(p0, x, rng=3), fd, rtol=1e-6,
                               atol=1e-8)
    second = infwide.taylor_expand(apply_fn, p0, 2)(p1, x, rng=np.random.default_rng(0))
    again = infwide.taylor_expand(apply_fn, p0, 2)(p1, x, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(second, again)


def test_linearised_model_ntk_is_the_network_ntk_at_p0():
    """The linearised model's Jacobian is constant: its empirical NTK at any parameters is
    the network's at p0 (NT: ``nt.empirical_ntk_fn(nt.linearize(f, p0))``)."""
    net, p0, p1, x1, x2 = _load("residual_ln")
    f_lin = infwide.linearize(net.apply_fn, p0)
    want = infwide.empirical_ntk_fn(net.apply_fn)(x1, x2, p0)
    np.testing.assert_allclose(infwide.empirical_ntk_fn(f_lin)(x1, x2, p1), want, rtol=1e-12,
                               atol=1e-14)
    assert np.abs(infwide.empirical_ntk_fn(net.apply_fn)(x1, x2, p1) - want).max() > 1e-3
