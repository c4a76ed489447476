"""Hand-derived backward passes of the spatial layers against central finite differences
(float64): the VJP with respect to every parameter array and the inputs."""
import numpy as np
import pytest

from infwide import stax

DN_NCHW = ("NCHW", "OIHW", "NCHW")

LAYERS = {
    "conv_valid": (lambda: stax.Conv(3, (3, 2), W_std=1.3, b_std=0.2), (2, 6, 5, 2)),
    "conv_same_s2": (lambda: stax.Conv(3, (3, 3), (2, 2), "SAME", b_std=0.1), (2, 7, 6, 2)),
    "conv_circ_s2": (lambda: stax.Conv(2, (3, 2), (2, 1), "CIRCULAR"), (2, 5, 4, 2)),
    "conv_standard": (lambda: stax.Conv(3, (2, 2), padding="SAME", b_std=0.5,
                                        parameterization="standard", s=(2, 1)), (2, 4, 4, 2)),
    "conv_nchw": (lambda: stax.Conv(2, (3, 2), padding="SAME", b_std=0.3,
                                    dimension_numbers=DN_NCHW), (2, 2, 5, 4)),
    "conv_mixed_layout": (lambda: stax.Conv(2, (2, 3), (1, 2), "CIRCULAR",
                                            dimension_numbers=("NHCW", "WIOH", "CWNH")),
                          (2, 4, 3, 5)),
    "conv1d": (lambda: stax.Conv(3, (3,), (2,), "SAME", b_std=0.1), (2, 7, 2)),
    "conv3d": (lambda: stax.Conv(2, (2, 2, 2), padding="CIRCULAR"), (2, 3, 3, 3, 2)),
    "convT_valid": (lambda: stax.ConvTranspose(3, (3, 3), (2, 2), b_std=0.2), (2, 3, 3, 2)),
    "convT_same": (lambda: stax.ConvTranspose(2, (3, 2), (2, 1), "SAME"), (2, 3, 4, 2)),
    "convT_circ": (lambda: stax.ConvTranspose(2, (4, 3), (2, 2), "CIRCULAR", b_std=0.1),
                   (2, 3, 3, 2)),
    "local_valid": (lambda: stax.ConvLocal(3, (2, 2), (1, 2), b_std=0.3), (2, 4, 5, 2)),
    "local_same": (lambda: stax.ConvLocal(2, (3, 3), padding="SAME", W_std=1.2), (2, 4, 4, 2)),
    "local_circ_nchw": (lambda: stax.ConvLocal(2, (3, 2), padding="CIRCULAR",
                                               dimension_numbers=DN_NCHW), (2, 2, 4, 3)),
    "avgpool_valid": (lambda: stax.AvgPool((2, 2), (2, 2)), (2, 5, 4, 2)),
    "avgpool_same_edges": (lambda: stax.AvgPool((3, 3), (2, 1), "SAME", True), (2, 5, 4, 2)),
    "avgpool_same": (lambda: stax.AvgPool((3, 2), padding="SAME"), (2, 4, 4, 2)),
    "avgpool_circ": (lambda: stax.AvgPool((3, 3), (2, 2), "CIRCULAR"), (2, 5, 5, 1)),
    "sumpool_nchw": (lambda: stax.SumPool((2, 2), (1, 2), "SAME", batch_axis=0, channel_axis=1),
                     (2, 2, 4, 5)),
    "gap": (lambda: stax.GlobalAvgPool(), (2, 3, 4, 2)),
    "gsp_channel_first": (lambda: stax.GlobalSumPool(channel_axis=1), (2, 3, 4, 2)),
    "flatten": (lambda: stax.Flatten(), (2, 3, 4, 2)),
    "flatten_out1": (lambda: stax.Flatten(batch_axis=1, batch_axis_out=1), (3, 2, 4)),
    "layernorm": (lambda: stax.LayerNorm(), (2, 3, 4, 3)),
    "layernorm_spatial": (lambda: stax.LayerNorm(axis=(1, 2, 3), eps=1e-3), (2, 3, 4, 3)),
    "dropout_train": (lambda: stax.Dropout(0.6), (2, 3, 4, 3)),
    "dropout_test": (lambda: stax.Dropout(0.6, "test"), (2, 3, 4, 3)),
    "cnn": (lambda: stax.serial(stax.Conv(3, (3, 3), padding="SAME", b_std=0.1), stax.Relu(),
                                stax.AvgPool((2, 2), (2, 2)), stax.LayerNorm(),
                                stax.Conv(2, (2, 2)), stax.Flatten(), stax.Dense(2)),
            (2, 6, 6, 2)),
}


def _fd(fun, a, idx, eps=1e-6):
    old = a[idx]
    a[idx] = old + eps
    up = fun()
    a[idx] = old - eps
    down = fun()
    a[idx] = old
    return (up - down) / (2 * eps)


def _leaves(tree):
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_backward_matches_finite_differences(name):
    make, shape = LAYERS[name]
    layer = make()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    _, params = layer.init_fn(rng, shape)
    kw = {"rng": 7}
    y, cache = layer.forward(params, x, **kw)
    np.testing.assert_array_equal(y, layer.apply(params, x, **kw))
    ct = rng.standard_normal(y.shape)
    d_params, d_x = layer.backward(params, cache, ct)
    leaves, d_leaves = _leaves(params), _leaves(d_params)
    assert len(leaves) == len(d_leaves)
    fun = lambda: float((ct * layer.apply(params, x, **kw)).sum())
    for what, a, g in [(f"param {i}", p, d) for i, (p, d) in enumerate(zip(leaves, d_leaves))] + \
            [("x", x, d_x)]:
        assert g.shape == a.shape, f"{name}: d {what} has shape {g.shape}, expected {a.shape}"
        picks = rng.choice(a.size, min(a.size, 25), replace=False)
        for k in picks:
            idx = np.unravel_index(k, a.shape)
            np.testing.assert_allclose(g[idx], _fd(fun, a, idx), rtol=1e-6, atol=1e-7,
                                       err_msg=f"{name}: d {what} at {idx}")


def test_param_shapes_follow_nt():
    """Weights in the rhs layout, biases broadcastable in the out layout (as NT's init_fn)."""
    x_shape = (2, 6, 5, 3)
    _, (W, b) = stax.Conv(4, (3, 2), b_std=0.1).init_fn(0, x_shape)
    assert W.shape == (3, 2, 3, 4) and b.shape == (1, 1, 1, 4)
    _, (W, b) = stax.Conv(4, (3, 2), b_std=0.1, dimension_numbers=DN_NCHW).init_fn(0, (2, 3, 6, 5))
    assert W.shape == (4, 3, 3, 2) and b.shape == (1, 4, 1, 1)
    out, (W, b) = stax.ConvLocal(4, (3, 2), b_std=0.1).init_fn(0, x_shape)
    assert out == (2, 4, 4, 4) and W.shape == (4, 4, 18, 4) and b.shape == (1, 4, 4, 4)
    out, (W, b) = stax.ConvTranspose(4, (3, 2), (2, 2)).init_fn(0, x_shape)
    assert out == (2, 13, 10, 4) and W.shape == (3, 2, 3, 4) and b is None
    assert stax.ConvTranspose(4, (3, 3), (2, 2), "CIRCULAR").init_fn(0, x_shape)[0] == \
        (2, 12, 10, 4)


def test_dropout_keeps_rate_fraction_and_rescales():
    x = np.ones((200, 50))
    y = stax.Dropout(0.7).apply_fn((), x, rng=np.random.default_rng(0))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(stax.Dropout(0.7, "test").apply_fn((), x), x)
