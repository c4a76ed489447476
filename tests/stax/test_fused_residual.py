"""Residual blocks inside the fused spatial engine equal the layer-by-layer path
(``fusion_disabled``), which builds every (N1, N2, H, H, W, W) branch tensor and sums them:
identity and convolution shortcuts, strided blocks, FanInProd, FanInConcat, nested branches,
whole WideResNets, from raw images and from a covariance already computed, x2 given or not,
NNGP only or with the NTK, float32 and float64. Each case also checks that the engine took
the whole network in one call (else the test would compare the layer path with itself)."""
import numpy as np
import pytest

from infwide import models, stax
from infwide.kernels.ops import Branches
from infwide.stax._fusion import fusion_disabled
from infwide.stax._plan import flatten_layers, spatial_run

# Relative to the largest entry; self-pair NTK entries pass arctan2 at k12 ~ k11 = k22 where
# theta is known only to ~sqrt(eps) (see tests of the fused engine).
TOL = {np.float32: 1e-5, np.float64: 1e-12}
TOL_SELF_NTK = {np.float32: 5e-4, np.float64: 2e-8}


def conv(c=3, f=(3, 3), s=(1, 1), W_std=1.3, b_std=0.2):
    return stax.Conv(c, f, s, padding="SAME", W_std=W_std, b_std=b_std)


def block(main, shortcut, fan_in=None):
    return stax.serial(stax.FanOut(2), stax.parallel(main, shortcut),
                       fan_in if fan_in is not None else stax.FanInSum())


def main_path(s=(1, 1), c=3):
    return stax.serial(stax.Relu(), conv(c, s=s), stax.LeakyRelu(0.2), conv(c))


NETS = {
    "identity": lambda: stax.serial(conv(), block(main_path(), stax.Identity()), stax.Relu(),
                                    conv(), stax.GlobalAvgPool()),
    "conv1x1_shortcut": lambda: stax.serial(conv(), block(main_path(), conv(f=(1, 1))),
                                            stax.GlobalAvgPool()),
    "strided": lambda: stax.serial(conv(), block(main_path((2, 2)), conv(s=(2, 2), W_std=0.9)),
                                   block(main_path(), stax.Identity()), stax.GlobalAvgPool()),
    "two_strided": lambda: stax.serial(conv(), block(main_path((2, 2)), conv(s=(2, 2))),
                                       block(main_path((2, 2)), conv(s=(2, 2))),
                                       stax.GlobalAvgPool()),
    "prod": lambda: stax.serial(conv(), block(stax.serial(stax.Relu(), conv()), conv(f=(1, 1)),
                                              stax.FanInProd()), stax.GlobalAvgPool()),
    "concat": lambda: stax.serial(conv(), block(stax.serial(stax.Relu(), conv(2)), conv(5),
                                                stax.FanInConcat()), stax.Relu(), conv(),
                                  stax.GlobalAvgPool()),
    "three_way": lambda: stax.serial(
        conv(), stax.FanOut(3), stax.parallel(main_path(), stax.Identity(), conv()),
        stax.FanInSum(), stax.GlobalAvgPool()),
    "nested": lambda: stax.serial(
        conv(), block(stax.serial(stax.Relu(), conv(), block(main_path(), stax.Identity())),
                      stax.Identity()), stax.GlobalAvgPool()),
    "pool_in_branch": lambda: stax.serial(
        conv(), block(stax.serial(stax.Relu(), conv(), stax.AvgPool((2, 2), (2, 2))),
                      stax.AvgPool((2, 2), (2, 2))), stax.Relu(), conv(), stax.GlobalAvgPool()),
    "mixed_transitions": lambda: stax.serial(   # a strided conv and a pool leave one block
        conv(), block(main_path((2, 2)), stax.AvgPool((3, 3), (2, 2), "SAME", True)),
        stax.GlobalAvgPool()),
    "flatten": lambda: stax.serial(conv(), block(main_path((2, 2)), conv(s=(2, 2))),
                                   stax.Relu(), stax.Flatten(), stax.Dense(2)),
    "full_out": lambda: stax.serial(conv(), block(main_path((2, 2)), conv(s=(2, 2)))),
    "wrn10": lambda: models.WideResNet(10, 1, out_dim=2),
    "wrn16": lambda: models.WideResNet(16, 0.25, out_dim=2, W_std=1.2, b_std=0.1),
}


def _check(got, ref, dtype):
    for f in ("nngp", "ntk", "cov1", "cov2"):
        a, b = getattr(got, f), getattr(ref, f)
        assert (a is None) == (b is None), f
        if b is None:
            continue
        assert a.shape == b.shape and a.dtype == b.dtype == dtype, f
        err = np.abs(a.astype(float) - b.astype(float)) / np.abs(b).max()
        if f == "ntk" and ref.x1_is_x2:
            idx = np.arange(a.shape[0])
            assert err[idx, idx].max() < TOL_SELF_NTK[dtype]
            err[idx, idx] = 0
        assert err.max() < TOL[dtype], (f, err.max())
    for m in ("shape1", "shape2", "x1_is_x2", "is_gaussian", "diagonal_spatial"):
        assert getattr(got, m) == getattr(ref, m), m


def _count_engine_calls(monkeypatch):
    import infwide.stax._fusion as fusion
    calls = {"raw": 0, "computed": 0}
    real_raw, real_k = fusion.spatial_chain, fusion.spatial_chain_kernel
    monkeypatch.setattr(fusion, "spatial_chain",
                        lambda *a: calls.__setitem__("raw", calls["raw"] + 1) or real_raw(*a))
    monkeypatch.setattr(fusion, "spatial_chain_kernel", lambda *a: calls.__setitem__(
        "computed", calls["computed"] + 1) or real_k(*a))
    return calls


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("same", [True, False])
def test_residual_fused_equals_layer_by_layer(monkeypatch, name, dtype, same):
    rng = np.random.default_rng(11)
    x1 = rng.standard_normal((3, 8, 8, 2)).astype(dtype)
    x2 = None if same else rng.standard_normal((2, 8, 8, 2)).astype(dtype)
    net = NETS[name]()
    calls = _count_engine_calls(monkeypatch)
    got = net.kernel_fn(x1, x2)
    assert calls == {"raw": 1, "computed": 0}, calls
    with fusion_disabled():
        ref = net.kernel_fn(x1, x2)
    _check(got, ref, dtype)


@pytest.mark.parametrize("name", ["wrn10", "strided", "concat"])
def test_nngp_only(name):
    x = np.random.default_rng(5).standard_normal((3, 8, 8, 3))
    net = NETS[name]()
    got = net.kernel_fn(x, None, "nngp")
    with fusion_disabled():
        ref = net.kernel_fn(x, None, "nngp")
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("same", [True, False])
def test_from_a_covariance_already_computed(monkeypatch, same):
    """A 'CIRCULAR' convolution (which the engine does not take) first: the residual network
    after it runs in one engine call on the pair tensors."""
    rng = np.random.default_rng(2)
    x1 = rng.standard_normal((3, 8, 8, 2))
    x2 = None if same else rng.standard_normal((2, 8, 8, 2))
    net = stax.serial(stax.Conv(3, (3, 3), padding="CIRCULAR", W_std=1.2, b_std=0.1),
                      *NETS["strided"]().layers[1:])
    calls = _count_engine_calls(monkeypatch)
    got = net.kernel_fn(x1, x2)
    assert calls == {"raw": 0, "computed": 1}, calls
    with fusion_disabled():
        ref = net.kernel_fn(x1, x2)
    _check(got, ref, np.float64)


def test_planner_makes_branches():
    layers = flatten_layers(models.WideResNet(10, 1))
    ops, gaussian, n = spatial_run(layers, False, (2, 8, 8, 3))
    assert n == len(layers) - 1   # everything but the Dense after GlobalAvgPool
    assert [type(op).__name__ for op in ops] == ["Conv", "Branches", "Branches", "Branches",
                                                 "GlobalAvgPool"]
    strided = ops[2]
    assert isinstance(strided, Branches) and strided.combine == "sum"
    assert [op.strides for op in strided.branches[0] if hasattr(op, "strides")] == \
        [(2, 2), (1, 1)]
    assert strided.branches[1][0].strides == (2, 2)


def test_branches_the_engine_does_not_take_stay_layers():
    """A non-Gaussian branch into FanInSum (the layer raises), a LayerNorm inside a branch,
    and a 'VALID' convolution inside a branch are left to the layers."""
    shape = (2, 8, 8, 3)
    relu_last = flatten_layers(block(stax.serial(conv(), stax.Relu()), stax.Identity()))
    assert spatial_run(relu_last, True, shape)[2] == 0
    with pytest.raises(ValueError, match="Gaussian"):
        stax.serial(conv(), block(stax.serial(conv(), stax.Relu()), conv()),
                    stax.GlobalAvgPool()).kernel_fn(np.ones(shape))
    norm = flatten_layers(block(stax.serial(stax.LayerNorm(), conv()), stax.Identity()))
    assert spatial_run(norm, True, shape)[2] == 0
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    valid = stax.serial(conv(), block(stax.serial(stax.Relu(), stax.Conv(3, (1, 1))), conv()),
                        stax.GlobalAvgPool())
    got = valid.kernel_fn(x)
    with fusion_disabled():
        ref = valid.kernel_fn(x)
    _check(got, ref, np.float64)
