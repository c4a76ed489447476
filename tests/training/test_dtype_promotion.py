"""float32 inputs with float64 parameters compute in float64, as NumPy (and NT with x64)
promote ``x @ W`` (issue 19): ``apply_fn``, gradients, empirical kernels and training."""
import numpy as np
import pytest
from scipy.special import erf

import infwide
from infwide import stax
from infwide.params import tree_leaves, tree_map


@pytest.fixture(scope="module")
def setup():
    net = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    x32 = x.astype(np.float32)
    _, params = net.init_fn(0, x.shape)
    assert all(a.dtype == np.float64 for a in tree_leaves(params))
    return net, params, x32


def _numpy_forward(params, x):
    """The same network written in plain NumPy (its own promotion decides the dtype)."""
    (W1, b1), _, (W2, _) = params
    h = x @ W1 * (1.5 / np.sqrt(x.shape[-1])) + 0.1 * b1
    return erf(h) @ W2 / np.sqrt(h.shape[-1])


def test_apply_fn_promotes(setup):
    net, params, x32 = setup
    y = net.apply_fn(params, x32)
    want = _numpy_forward(params, x32)
    assert want.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-13)
    p32 = tree_map(lambda a: a.astype(np.float32), params)
    assert net.apply_fn(p32, x32).dtype == np.float32
    assert net.apply_fn(p32, x32.astype(np.float64)).dtype == np.float64


def test_grad_and_empirical_promote(setup):
    net, params, x32 = setup
    y = np.zeros((5, 2))
    g = infwide.grad(net, "mse")(params, x32, y)
    g64 = infwide.grad(net, "mse")(params, x32.astype(np.float64), y)
    for a, b in zip(tree_leaves(g), tree_leaves(g64)):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    k = infwide.empirical_ntk_fn(net)(x32, None, params)
    assert k.dtype == np.float64
    np.testing.assert_allclose(k, infwide.empirical_ntk_fn(net)(x32.astype(np.float64), None,
                                                                params), rtol=1e-12)


def test_train_mse_promotes(setup):
    net, params, x32 = setup
    y = np.ones((5, 2), np.float32)
    kw = dict(t=[0.0, 0.2], learning_rate=0.1, x_test=x32[:2])
    a = infwide.train_mse(net, params, x32, y, **kw)
    b = infwide.train_mse(net, params, x32.astype(np.float64), y.astype(np.float64), **kw)
    assert a.fx_train.dtype == np.float64 and a.fx_test.dtype == np.float64
    np.testing.assert_allclose(a.fx_train, b.fx_train, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.fx_test, b.fx_test, rtol=1e-12, atol=1e-14)
