"""Every hand-derived backward pass against central finite differences in float64: layer by
layer (Dense in both parameterizations, every nonlinearity, every combinator) and composed."""
import numpy as np
import pytest

from infwide import stax
from infwide.stax.elementwise import Elementwise
from infwide.params import tree_leaves, tree_map

from tests.stax.test_activations import API_NONLINEARITIES


def _as_list(t):
    return t if isinstance(t, list) else [t]


def _pairing(ct, y):
    return sum(float((c * v).sum()) for c, v in zip(_as_list(ct), _as_list(y)))


def _random_like(rng, y):
    if isinstance(y, list):
        return [rng.standard_normal(v.shape) for v in y]
    return rng.standard_normal(y.shape)


def _fd_entries(fun, arrays, eps, max_entries, rng):
    """Central differences of the scalar ``fun()`` w.r.t. entries of ``arrays`` (in place)."""
    out = []
    for a in arrays:
        g = np.full(a.shape, np.nan)
        flat_idx = np.arange(a.size)
        if a.size > max_entries:
            flat_idx = rng.choice(a.size, max_entries, replace=False)
        for k in flat_idx:
            idx = np.unravel_index(k, a.shape)
            old = a[idx]
            a[idx] = old + eps
            up = fun()
            a[idx] = old - eps
            down = fun()
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        out.append(g)
    return out


def fd_check(layer, x, params=None, seed=0, eps=1e-6, atol=1e-7, rtol=1e-6, max_entries=60,
             **kwargs):
    """Compare ``layer.backward`` with finite differences of ``<ct, layer.apply(params, x)>``
    for a random cotangent ``ct``: every parameter array and the inputs, entry by entry
    (a random subset of ``max_entries`` entries per array when larger)."""
    rng = np.random.default_rng(seed)
    x = [np.array(xi, dtype=np.float64) for xi in x] if isinstance(x, list) else \
        np.array(x, dtype=np.float64)
    if params is None:
        shape = [xi.shape for xi in x] if isinstance(x, list) else x.shape
        _, params = layer.init_fn(rng, shape)
    params = tree_map(lambda a: np.array(a, dtype=np.float64), params)
    y, cache = layer.forward(params, x, **kwargs)
    for a, b in zip(_as_list(y), _as_list(layer.apply(params, x, **kwargs))):
        np.testing.assert_array_equal(a, b, err_msg=f"{layer.name}: forward != apply")
    ct = _random_like(rng, y)
    d_params, d_x = layer.backward(params, cache, ct)
    leaves, d_leaves = tree_leaves(params), tree_leaves(d_params)
    assert len(leaves) == len(d_leaves), f"{layer.name}: d_params does not match params"
    fun = lambda: _pairing(ct, layer.apply(params, x, **kwargs))
    xs = _as_list(x)
    numeric = _fd_entries(fun, leaves + xs, eps, max_entries, rng)
    analytic = d_leaves + _as_list(d_x)
    names = [f"param #{i}" for i in range(len(leaves))] + [f"x[{i}]" for i in range(len(xs))]
    for name, a, n, ref in zip(names, analytic, numeric, leaves + xs):
        assert np.shape(a) == ref.shape, f"{layer.name}: {name} gradient has the wrong shape"
        m = ~np.isnan(n)
        np.testing.assert_allclose(np.asarray(a)[m], n[m], rtol=rtol, atol=atol,
                                   err_msg=f"{layer.name}: d {name}")
    return d_params, d_x


# -- Dense ------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["ntk", "standard"])
@pytest.mark.parametrize("b_std", [None, 0.3])
def test_dense_backward(param, b_std):
    x = np.random.default_rng(1).standard_normal((4, 5))
    fd_check(stax.Dense(3, W_std=1.7, b_std=b_std, parameterization=param, s=(2, 1)), x)


@pytest.mark.parametrize("channel_axis", [-1, 1])
def test_dense_backward_spatial_and_channel_axis(channel_axis):
    x = np.random.default_rng(2).standard_normal((3, 4, 2, 3))
    layer = stax.Dense(2, W_std=1.3, b_std=0.4, channel_axis=channel_axis)
    fd_check(layer, x)


def test_dense_standard_with_width_scaling():
    x = np.random.default_rng(3).standard_normal((3, 4))
    fd_check(stax.Dense(2, W_std=0.8, b_std=0.2, parameterization="standard", s=(3, 2)), x)


# -- nonlinearities: every one of the API ------------------------------------------------------
NONLINEAR = {
    "Relu": (), "LeakyRelu": (0.1,), "Abs": (), "ABRelu": (-0.4, 1.3), "Erf": (),
    "Sigmoid_like": (), "Gelu": (), "Sin": (), "Cos": (), "Rbf": (), "Gaussian": (),
    "Exp": (), "Monomial": (3,), "RectifiedMonomial": (2,), "Polynomial": ([0.5, -1.0, 0.3],),
    "Hermite": (3,), "ElementwiseNumerical": (np.tanh, 16),
}


def test_every_nonlinearity_of_the_api_is_checked():
    # Sign has zero derivative almost everywhere: test_sign_backward
    assert set(NONLINEAR) | {"Sign"} == set(API_NONLINEARITIES)
    for name, args in NONLINEAR.items():
        assert isinstance(getattr(stax, name)(*args), Elementwise), name


@pytest.mark.parametrize("name", sorted(NONLINEAR))
def test_nonlinearity_backward(name):
    layer = getattr(stax, name)(*NONLINEAR[name])
    x = np.random.default_rng(4).standard_normal((3, 6)) * 0.9
    x[np.abs(x) < 1e-3] = 0.1  # keep away from kinks of piecewise nonlinearities
    fd_check(layer, x, rtol=1e-5, atol=1e-6)


def test_sign_backward():
    layer = stax.Sign()
    x = np.random.default_rng(5).standard_normal((3, 4))
    _, d_x = layer.backward((), layer.forward((), x)[1], np.ones_like(x))
    np.testing.assert_array_equal(d_x, 0.0)


# -- combinators ------------------------------------------------------------------------------
def _mlp_block(width, seed_w=1.2):
    return stax.serial(stax.Dense(width, W_std=seed_w, b_std=0.2), stax.Relu())


COMPOSED = {
    "mlp_ntk": lambda: stax.serial(stax.Dense(6, W_std=1.5, b_std=0.1), stax.Relu(),
                                   stax.Dense(5, W_std=1.5, b_std=0.1), stax.LeakyRelu(0.2),
                                   stax.Dense(2, W_std=1.5)),
    "mlp_standard": lambda: stax.serial(
        stax.Dense(6, W_std=1.5, b_std=0.1, parameterization="standard"), stax.Abs(),
        stax.Dense(2, W_std=1.5, b_std=0.1, parameterization="standard")),
    "residual_sum": lambda: stax.serial(
        stax.Dense(4), stax.FanOut(2),
        stax.parallel(_mlp_block(4), stax.Identity()), stax.FanInSum(), stax.Dense(2)),
    "fanin_prod": lambda: stax.serial(
        stax.FanOut(3), stax.parallel(stax.Dense(3, b_std=0.5), stax.Dense(3),
                                      _mlp_block(3)), stax.FanInProd(), stax.Dense(1)),
    "fanin_concat": lambda: stax.serial(
        stax.FanOut(2), stax.parallel(_mlp_block(3), stax.Dense(2, b_std=0.3)),
        stax.FanInConcat(), stax.Relu(), stax.Dense(2)),
    "repeat": lambda: stax.serial(stax.Dense(4), stax.repeat(_mlp_block(4), 3), stax.Dense(1)),
    "repeat_zero": lambda: stax.serial(stax.Dense(3), stax.repeat(_mlp_block(3), 0),
                                       stax.Dense(1)),
    "nested": lambda: stax.serial(stax.serial(stax.Dense(3, b_std=1.0), stax.serial(
        stax.Relu(), stax.Identity())), stax.serial(stax.Dense(2))),
}


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_composed_backward(name):
    x = np.random.default_rng(6).standard_normal((3, 4))
    fd_check(COMPOSED[name](), x, rtol=1e-5, atol=1e-6)


def test_parallel_on_list_inputs():
    layer = stax.parallel(stax.Dense(3, b_std=0.2), stax.serial(stax.Dense(2), stax.Relu()))
    rng = np.random.default_rng(7)
    fd_check(layer, [rng.standard_normal((3, 4)), rng.standard_normal((3, 2))])


def test_repeat_zero_gives_zero_gradient():
    layer = stax.repeat(stax.Dense(3, b_std=0.5), 0)
    x = np.random.default_rng(8).standard_normal((2, 3))
    _, params = layer.init_fn(0, x.shape)
    y, cache = layer.forward(params, x)
    d_params, d_x = layer.backward(params, cache, np.ones_like(y))
    for g in tree_leaves(d_params):
        np.testing.assert_array_equal(g, 0.0)
    np.testing.assert_array_equal(d_x, 1.0)


# -- spatial layers ---------------------------------------------------------------------------
SPATIAL = {
    "conv_valid": (lambda: stax.Conv(3, (2, 3), W_std=1.3, b_std=0.2), (2, 5, 6, 2)),
    "conv_same_strided": (lambda: stax.Conv(2, (3, 2), strides=(2, 1), padding="SAME",
                                            b_std=0.1), (2, 5, 4, 3)),
    "conv_circular": (lambda: stax.Conv(2, (3, 3), padding="CIRCULAR", b_std=0.3), (2, 4, 5, 2)),
    "conv_standard": (lambda: stax.Conv(2, (2, 2), W_std=1.1, b_std=0.2,
                                        parameterization="standard"), (2, 4, 4, 3)),
    "conv_nchw": (lambda: stax.Conv(2, (2, 2), padding="SAME",
                                    dimension_numbers=("NCHW", "OIHW", "NCHW")), (2, 3, 4, 4)),
    "conv_1d": (lambda: stax.Conv(3, (3,), strides=(2,), padding="SAME", b_std=0.1), (2, 7, 2)),
    "conv_transpose": (lambda: stax.ConvTranspose(2, (2, 3), strides=(2, 1), padding="SAME",
                                                  b_std=0.2), (2, 3, 4, 2)),
    "conv_local": (lambda: stax.ConvLocal(2, (2, 2), b_std=0.2), (2, 4, 4, 2)),
    "avg_pool": (lambda: stax.AvgPool((2, 2), strides=(1, 2)), (2, 4, 5, 2)),
    "avg_pool_same_edges": (lambda: stax.AvgPool((3, 2), padding="SAME", normalize_edges=True),
                            (2, 4, 4, 2)),
    "sum_pool": (lambda: stax.SumPool((2, 2), padding="SAME"), (2, 3, 5, 2)),
    "global_avg_pool": (lambda: stax.GlobalAvgPool(), (2, 3, 4, 3)),
    "global_sum_pool": (lambda: stax.GlobalSumPool(), (2, 3, 4, 3)),
    "flatten": (lambda: stax.Flatten(), (2, 3, 2, 2)),
    "layer_norm": (lambda: stax.LayerNorm(), (3, 5)),
    "layer_norm_spatial": (lambda: stax.LayerNorm(axis=(1, 2, 3)), (2, 3, 2, 4)),
    "dropout_test_mode": (lambda: stax.Dropout(0.7, mode="test"), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(SPATIAL))
def test_spatial_layer_backward(name):
    make, shape = SPATIAL[name]
    x = np.random.default_rng(9).standard_normal(shape)
    fd_check(make(), x, rtol=1e-5, atol=1e-6)


def test_dropout_train_backward_with_fixed_mask():
    x = np.random.default_rng(10).standard_normal((3, 6))
    d_params, d_x = fd_check(stax.Dropout(0.6), x, rng=1234)
    assert np.any(d_x == 0) and np.any(d_x != 0)


SPATIAL_COMPOSED = {
    "cnn_flatten": lambda: stax.serial(
        stax.Conv(3, (2, 2), padding="SAME", b_std=0.1), stax.Relu(),
        stax.Conv(2, (2, 2), strides=(2, 2)), stax.Erf(), stax.Flatten(), stax.Dense(2)),
    "cnn_pool_gap": lambda: stax.serial(
        stax.Conv(3, (2, 2), padding="CIRCULAR"), stax.Gelu(), stax.AvgPool((2, 2)),
        stax.Conv(2, (2, 2), padding="SAME", b_std=0.2), stax.Relu(), stax.GlobalAvgPool(),
        stax.Dense(2, b_std=0.1)),
    "resnet_block_layernorm": lambda: stax.serial(
        stax.Conv(3, (2, 2), padding="SAME"), stax.FanOut(2),
        stax.parallel(stax.serial(stax.LayerNorm(axis=(1, 2, 3)), stax.Relu(),
                                  stax.Conv(3, (3, 3), padding="SAME", b_std=0.1)),
                      stax.Identity()),
        stax.FanInSum(), stax.LayerNorm(), stax.GlobalSumPool(), stax.Dense(1)),
    "concat_channels": lambda: stax.serial(
        stax.FanOut(2), stax.parallel(stax.Conv(2, (1, 1)), stax.Conv(3, (3, 3), padding="SAME")),
        stax.FanInConcat(), stax.Relu(), stax.Flatten(), stax.Dense(1)),
}


@pytest.mark.parametrize("name", sorted(SPATIAL_COMPOSED))
def test_spatial_composed_backward(name):
    x = np.random.default_rng(11).standard_normal((2, 4, 4, 2))
    fd_check(SPATIAL_COMPOSED[name](), x, rtol=1e-5, atol=1e-6, max_entries=40)
