"""The fused spatial engine, reached through ``serial.kernel_fn``, equals the layer-by-layer
path (``fusion_disabled``) to rounding: every readout (GlobalAvgPool, Flatten, full or diagonal
spatial output), every padding the engine takes, pools with SAME padding and normalize_edges,
Dense layers on spatial kernels, x2 given or not, float32 and float64."""
import numpy as np
import pytest

from infwide import stax
from infwide.stax._fusion import fusion_disabled

# Relative to the largest entry. The NTK entries of an image with itself go through
# arctan2(sqrt(k11 k22 - k12^2), k12) at k12 ~ k11 = k22, where theta is only known to
# sqrt(eps): the layer path forms k12 and k11 by different sums, so those entries may differ
# by ~sqrt(eps) / pi (the fused path takes them from the same sum and gets theta = 0).
TOL = {np.float32: 3e-6, np.float64: 1e-13}
TOL_SELF_NTK = {np.float32: 5e-4, np.float64: 2e-8}


def conv(pad="SAME", f=(3, 3), b_std=0.1):
    return stax.Conv(4, f, padding=pad, W_std=1.4, b_std=b_std)


NETS = {
    "myrtle_gap": lambda: stax.serial(
        conv(), stax.Relu(), conv(b_std=None), stax.LeakyRelu(0.1),
        stax.AvgPool((2, 2), (2, 2)), conv(), stax.Abs(), stax.GlobalAvgPool(),
        stax.Dense(3, 1.2, 0.1), stax.Relu(), stax.Dense(1)),
    "pools_same": lambda: stax.serial(
        conv(), stax.Relu(), stax.AvgPool((3, 3), (2, 2), "SAME", normalize_edges=True),
        stax.Dense(5, 1.3, 0.2), stax.ABRelu(-0.3, 1.1), stax.AvgPool((2, 2), (1, 1), "SAME"),
        conv(f=(1, 1)), stax.Relu(), stax.GlobalAvgPool()),
    "flatten": lambda: stax.serial(
        conv(), stax.Relu(), conv("VALID"), stax.Relu(), conv(f=(1, 3)), stax.Flatten(),
        stax.Dense(1)),
    "full_out": lambda: stax.serial(
        conv(), stax.Relu(), stax.AvgPool((2, 2), (1, 1)), conv("VALID", (2, 3)), stax.Relu()),
    "diag_out": lambda: stax.serial(conv(), stax.Relu(), conv("VALID")),
    "dense_first": lambda: stax.serial(
        stax.Dense(6, 1.5, 0.2), conv(), stax.Relu(), stax.GlobalAvgPool()),
    "strided": lambda: stax.serial(
        conv(), stax.Relu(), stax.Conv(4, (3, 3), (2, 2), "SAME", W_std=1.3, b_std=0.2),
        stax.Relu(), conv(), stax.GlobalAvgPool()),
    "strided_valid_flatten": lambda: stax.serial(
        conv(), stax.Relu(), stax.Conv(4, (3, 2), (2, 1), "VALID", W_std=1.2), stax.Relu(),
        stax.Flatten()),
    "residual": lambda: stax.serial(
        conv(), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Conv(4, (3, 3), (2, 2), "SAME"),
                                  stax.Relu(), conv()),
                      stax.Conv(4, (3, 3), (2, 2), "SAME", W_std=0.9)),
        stax.FanInSum(), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), conv(), stax.Relu(), conv()), stax.Identity()),
        stax.FanInSum(), stax.Relu(), conv(), stax.GlobalAvgPool()),
    "circular_breaks_run": lambda: stax.serial(
        conv(), stax.Relu(), conv("CIRCULAR"), stax.Relu(), stax.GlobalAvgPool()),
}


def _check(got, ref, dtype):
    for f in ("nngp", "ntk", "cov1", "cov2"):
        a, b = getattr(got, f), getattr(ref, f)
        assert (a is None) == (b is None), f
        if b is None:
            continue
        assert a.shape == b.shape and a.dtype == b.dtype == dtype, f
        scale = np.abs(b).max()
        err = np.abs(a.astype(float) - b.astype(float)) / scale
        if f == "ntk" and ref.x1_is_x2:
            idx = np.arange(a.shape[0])
            assert err[idx, idx].max() < TOL_SELF_NTK[dtype]
            err[idx, idx] = 0
        assert err.max() < TOL[dtype], (f, err.max())
    for m in ("shape1", "shape2", "x1_is_x2", "is_gaussian", "diagonal_spatial"):
        assert getattr(got, m) == getattr(ref, m), m


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("same", [True, False])
def test_fused_equals_layer_by_layer(name, dtype, same):
    rng = np.random.default_rng(7)
    x1 = rng.standard_normal((3, 6, 7, 2)).astype(dtype)
    x2 = None if same else rng.standard_normal((2, 6, 7, 2)).astype(dtype)
    net = NETS[name]()
    got = net.kernel_fn(x1, x2)
    with fusion_disabled():
        ref = net.kernel_fn(x1, x2)
    _check(got, ref, dtype)


def test_get_and_nngp_only():
    x = np.random.default_rng(3).standard_normal((4, 5, 5, 3))
    net = NETS["myrtle_gap"]()
    with fusion_disabled():
        ref = net.kernel_fn(x, None, "nngp")
    np.testing.assert_allclose(net.kernel_fn(x, None, "nngp"), ref, rtol=1e-12)
    pair = net.kernel_fn(x, None, ("ntk", "nngp"))
    assert pair._fields == ("ntk", "nngp")


def test_errors_of_layers_are_kept():
    x = np.ones((2, 4, 4, 1))
    with pytest.raises(ValueError, match="Gaussian input"):
        stax.serial(stax.Relu(), conv(), stax.Relu(), stax.GlobalAvgPool()).kernel_fn(x)


@pytest.mark.parametrize("name, raw, computed", [
    ("myrtle_gap", 1, 0), ("flatten", 1, 0), ("circular_breaks_run", 1, 1),
    ("dense_first", 1, 0), ("residual", 1, 0)])
def test_planner_uses_the_engine(monkeypatch, name, raw, computed):
    """Runs from the raw images (residual blocks included: one run per network), and runs on
    covariances already computed (after a layer the engine does not take)."""
    import infwide.stax._fusion as fusion
    calls = {"raw": 0, "computed": 0}
    real_raw, real_k = fusion.spatial_chain, fusion.spatial_chain_kernel
    monkeypatch.setattr(fusion, "spatial_chain",
                        lambda *a: calls.__setitem__("raw", calls["raw"] + 1) or real_raw(*a))
    monkeypatch.setattr(fusion, "spatial_chain_kernel", lambda *a: calls.__setitem__(
        "computed", calls["computed"] + 1) or real_k(*a))
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 2))
    NETS[name]().kernel_fn(x)
    assert (calls["raw"], calls["computed"]) == (raw, computed)
    calls.update(raw=0, computed=0)
    with fusion_disabled():
        NETS[name]().kernel_fn(x)
    assert calls == {"raw": 0, "computed": 0}
