"""The fused fully-connected chain and the planner that hands it runs of layers: the fused
results equal the layer-by-layer ones to rounding, for every dtype, with and without x2."""
import numpy as np
import pytest

from infwide import stax
from infwide.kernels.fc import fc_chain, fc_chain_reference
from infwide.kernels.ops import Affine, Dual
from infwide.stax._fusion import fusion_disabled

from tests.conftest import assert_equals_general_path

TOL = {np.float32: 2e-6, np.float64: 1e-13}
# The NTK of an input with itself passes theta = atan2(sqrt(k11 k22 - k12^2), k12) at
# k12 ~ k11 = k22, where theta is only determined to ~sqrt(eps) (the two paths may round
# k11 k22 - k12^2 differently, e.g. with or without a fused multiply-add).
TOL_SELF_NTK = {np.float32: 5e-4, np.float64: 2e-8}
OPS = [Affine(2.0, 0.1), Dual("abrelu", (0.0, 1.0)), Affine(1.7, 0.0),
       Dual("abrelu", (-0.3, 1.2)), Affine(0.9, 0.05), Dual("abrelu", (-1.0, 1.0)),
       Affine(1.1, 0.2)]


def _rel(a, b):
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max() /
                 np.abs(np.asarray(b, float)).max())


def _inputs(rng, n1, n2, d, dtype):
    x1 = rng.standard_normal((n1, d)).astype(dtype)
    x2 = rng.standard_normal((n2, d)).astype(dtype)
    x1[2] = 0.0   # a zero input: zero variances, atan2(0, 0) = pi/2 as in Neural Tangents
    return x1, x2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("same", [True, False])
@pytest.mark.parametrize("with_ntk", [True, False])
def test_fc_chain_equals_reference(dtype, same, with_ntk):
    rng = np.random.default_rng(0)
    x1, x2 = _inputs(rng, 37, 23, 11, dtype)
    x2 = x1 if same else x2
    nngp = (x1 @ x2.T) / dtype(11)
    ntk = rng.random(nngp.shape).astype(dtype) if with_ntk else None
    if same and with_ntk:
        ntk = ntk + ntk.T
    cov1 = np.mean(x1 * x1, -1)
    cov2 = None if same else np.mean(x2 * x2, -1)
    got = fc_chain(nngp, ntk, cov1, cov2, OPS, x1_is_x2=same)
    assert got[4] is True
    ref = fc_chain_reference(np, nngp, ntk, cov1, cov2, OPS)
    for g, r in zip(got[:4], ref):
        assert (g is None) == (r is None)
        if r is not None:
            assert g.dtype == dtype and g.shape == r.shape
            assert _rel(g, r) < TOL[dtype]
    if same:
        np.testing.assert_array_equal(got[0], got[0].T)


def _fc_net():
    return stax.serial(stax.Dense(64, W_std=1.5, b_std=0.05), stax.Relu(),
                       stax.Dense(64, W_std=1.2, b_std=0.1), stax.LeakyRelu(0.2),
                       stax.serial(stax.Dense(32, W_std=1.4), stax.Abs()),
                       stax.Dense(16, W_std=1.3, b_std=0.3, parameterization="standard"),
                       stax.ABRelu(-0.5, 1.5), stax.Dense(1, W_std=1.1, b_std=0.2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("same", [True, False])
def test_planner_equals_layer_by_layer(dtype, same):
    rng = np.random.default_rng(1)
    x1, x2 = _inputs(rng, 29, 17, 9, dtype)
    x2 = None if same else x2
    net = _fc_net()
    fused = net.kernel_fn(x1, x2)
    with fusion_disabled():
        plain = net.kernel_fn(x1, x2)
    for f in ("nngp", "ntk", "cov1", "cov2"):
        a, b = getattr(fused, f), getattr(plain, f)
        assert (a is None) == (b is None)
        if b is not None:
            assert a.dtype == b.dtype == dtype and a.shape == b.shape
            if f == "ntk" and same:   # see TOL_SELF_NTK
                idx = np.arange(a.shape[0])
                assert _rel(a[idx, idx], b[idx, idx]) < TOL_SELF_NTK[dtype]
                a, b = a.copy(), b.copy()
                a[idx, idx] = b[idx, idx] = 0
            assert _rel(a, b) < TOL[dtype], f
    assert (fused.shape1, fused.shape2, fused.is_gaussian, fused.x1_is_x2) == \
        (plain.shape1, plain.shape2, plain.is_gaussian, plain.x1_is_x2)


def test_planner_keeps_layer_errors_and_get():
    x = np.random.default_rng(2).standard_normal((6, 5))
    with pytest.raises(ValueError, match="Gaussian input"):
        stax.serial(stax.Relu(), stax.Dense(3), stax.Relu()).kernel_fn(x)
    net = _fc_net()
    both = net.kernel_fn(x, None, ("ntk", "nngp"))
    assert both._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(both.nngp, net.kernel_fn(x, None, "nngp"))
    # x2 = x in another order takes the general path (kernel_fn(x, x) is rewritten into x2=None)
    a, b = net.kernel_fn(x, None), net.kernel_fn(x, np.roll(x, 1, axis=0))
    assert not b.x1_is_x2
    assert_equals_general_path(a.nngp, b.nngp, rtol=1e-13)
    assert_equals_general_path(a.ntk, b.ntk, rtol=1e-13)
