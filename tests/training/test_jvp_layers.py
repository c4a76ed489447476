"""Every layer's hand-derived forward-mode rule (``Layer.jvp``) against central finite
differences of its forward pass in a random direction of parameters and inputs, in float64;
and the adjoint identity ``<ct, J v> = <J^T ct, v>`` with the independent backward pass."""
import numpy as np
import pytest

import infwide
from infwide import stax
from infwide.params import tree_leaves, tree_map

IMG = (2, 5, 5, 2)
CASES = {
    "Dense": (lambda: stax.Dense(3, W_std=1.7, b_std=0.3), (4, 5)),
    "Dense_standard_nobias": (lambda: stax.Dense(3, parameterization="standard", s=(2, 1)),
                              (4, 5)),
    "Dense_channel_axis": (lambda: stax.Dense(2, b_std=0.4, channel_axis=1), (3, 4, 2)),
    "Conv": (lambda: stax.Conv(3, (2, 2), strides=(2, 1), padding="SAME", b_std=0.2), IMG),
    "Conv_circular": (lambda: stax.Conv(2, (3, 3), padding="CIRCULAR"), IMG),
    "ConvTranspose": (lambda: stax.ConvTranspose(2, (2, 2), strides=(2, 2), b_std=0.1), IMG),
    "ConvLocal": (lambda: stax.ConvLocal(2, (2, 2), b_std=0.1), IMG),
    "AvgPool": (lambda: stax.AvgPool((2, 2), padding="SAME"), IMG),
    "SumPool": (lambda: stax.SumPool((2, 2), strides=(1, 1)), IMG),
    "GlobalAvgPool": (lambda: stax.GlobalAvgPool(), IMG),
    "GlobalSumPool": (lambda: stax.GlobalSumPool(), IMG),
    "Flatten": (lambda: stax.Flatten(), IMG),
    "LayerNorm": (lambda: stax.LayerNorm(), (3, 4)),
    "LayerNorm_spatial": (lambda: stax.LayerNorm(axis=(1, 2, 3)), IMG),
    "Dropout": (lambda: stax.Dropout(0.7), (3, 4)),
    "Identity": (lambda: stax.Identity(), (3, 4)),
    "Relu": (lambda: stax.Relu(), (3, 4)),
    "LeakyRelu": (lambda: stax.LeakyRelu(0.1), (3, 4)),
    "Abs": (lambda: stax.Abs(), (3, 4)),
    "ABRelu": (lambda: stax.ABRelu(-0.4, 1.3), (3, 4)),
    "Sign": (lambda: stax.Sign(), (3, 4)),
    "Erf": (lambda: stax.Erf(), (3, 4)),
    "Sigmoid_like": (lambda: stax.Sigmoid_like(), (3, 4)),
    "Gelu": (lambda: stax.Gelu(), (3, 4)),
    "Sin": (lambda: stax.Sin(), (3, 4)),
    "Cos": (lambda: stax.Cos(), (3, 4)),
    "Rbf": (lambda: stax.Rbf(), (3, 4)),
    "Exp": (lambda: stax.Exp(), (3, 4)),
    "Gaussian": (lambda: stax.Gaussian(), (3, 4)),
    "Monomial": (lambda: stax.Monomial(3), (3, 4)),
    "RectifiedMonomial": (lambda: stax.RectifiedMonomial(2), (3, 4)),
    "Polynomial": (lambda: stax.Polynomial([0.5, -1.0, 0.3]), (3, 4)),
    "Hermite": (lambda: stax.Hermite(3), (3, 4)),
    "ElementwiseNumerical": (lambda: stax.ElementwiseNumerical(np.tanh, 12), (3, 4)),
    "serial": (lambda: stax.serial(stax.Dense(4, b_std=0.1), stax.Gelu(), stax.Dense(2)),
               (3, 4)),
    "repeat": (lambda: stax.repeat(stax.serial(stax.Dense(4, b_std=0.1), stax.Erf()), 3),
               (3, 4)),
    "FanOut_parallel_FanInSum": (lambda: stax.serial(
        stax.FanOut(2), stax.parallel(stax.Dense(3), stax.serial(stax.Dense(3), stax.Sin())),
        stax.FanInSum()), (3, 4)),
    "FanInProd": (lambda: stax.serial(stax.FanOut(3), stax.parallel(
        stax.Dense(3), stax.Dense(3, b_std=0.5), stax.Identity()), stax.FanInProd()), (3, 3)),
    "FanInConcat": (lambda: stax.serial(stax.FanOut(2), stax.parallel(
        stax.Dense(3), stax.Conv(2, (1,))), stax.FanInConcat()), (3, 2, 4)),
    "parallel_list_out": (lambda: stax.parallel(stax.Dense(2), stax.Relu()), [(3, 4), (3, 2)]),
}


def _rand(rng, shape):
    if isinstance(shape, list):
        return [rng.standard_normal(s) for s in shape]
    return rng.standard_normal(shape)


def _lin(a, b, e):
    if isinstance(a, list):
        return [u + e * v for u, v in zip(a, b)]
    return a + e * b


def _flat(y):
    return np.concatenate([np.ravel(v) for v in y]) if isinstance(y, list) else np.ravel(y)


def test_every_public_layer_has_a_case():
    covered = set(CASES) | {token for n in CASES for token in n.split("_")}
    missing = [n for n in stax.__all__ if n != "Layer" and n not in covered]
    assert not missing, f"layers without a forward-mode test: {missing}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences(name):
    build, shape = CASES[name]
    layer = build()
    rng = np.random.default_rng(7)
    x = _rand(rng, shape)
    _, params = layer.init_fn(rng, [tuple(s) for s in shape] if isinstance(shape, list) else shape)
    dp = tree_map(lambda a: rng.standard_normal(a.shape), params)
    dx = _rand(rng, shape)
    kw = {"rng": 3} if name == "Dropout" else {}
    y, dy = layer.jvp(params, x, dp, dx, **kw)
    np.testing.assert_array_equal(_flat(y), _flat(layer.apply(params, x, **kw)))
    eps = 1e-6
    up = layer.apply(tree_map(lambda a, d: a + eps * d, params, dp), _lin(x, dx, eps), **kw)
    down = layer.apply(tree_map(lambda a, d: a - eps * d, params, dp), _lin(x, dx, -eps), **kw)
    fd = (_flat(up) - _flat(down)) / (2 * eps)
    np.testing.assert_allclose(_flat(dy), fd, rtol=1e-6, atol=1e-7, err_msg=name)
    # adjoint identity with the (independent) hand-derived backward pass
    ct = _rand(rng, [v.shape for v in y] if isinstance(y, list) else y.shape)
    _, cache = layer.forward(params, x, **kw)
    g_p, g_x = layer.backward(params, cache, ct)
    lhs = float(_flat(ct) @ _flat(dy))
    rhs = sum(float((g * d).sum()) for g, d in zip(tree_leaves(g_p), tree_leaves(dp)))
    rhs += float(_flat(g_x) @ _flat(dx))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10), name


def test_public_jvp_validates_and_promotes():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(2))
    _, params = init_fn(0, (3, 4))
    x = np.ones((3, 4), np.float32)
    dp = tree_map(np.ones_like, params)
    y, dy = infwide.taylor.jvp(apply_fn, params, x, dp)
    assert y.dtype == dy.dtype == np.float64
    with pytest.raises(ValueError, match="tangent d_params"):
        infwide.taylor.jvp(apply_fn, params, x, dp[:2])
