"""Ready architectures: kernels against Neural Tangents' own definitions (fixtures from
tests/nt_fixtures/make_models.py), finite use, and argument checks."""

import numpy as np
import pytest

from infwide import models

from tests.conftest import nt_fixture

FIX = nt_fixture("models.npz")
CASES = sorted({k.split("/")[0] for k in FIX.files})


@pytest.mark.parametrize("name", CASES)
def test_kernels_match_neural_tangents(name):
    net = eval(str(FIX[f"{name}/expr"]))
    x2 = FIX[f"{name}/x2"] if f"{name}/x2" in FIX.files else None
    k = net.kernel_fn(FIX[f"{name}/x1"], x2, ("nngp", "ntk"))
    for q in ("nngp", "ntk"):
        ref = FIX[f"{name}/{q}"]
        assert getattr(k, q).shape == ref.shape
        np.testing.assert_allclose(getattr(k, q), ref, rtol=1e-6, atol=1e-10 * np.abs(ref).max(),
                                   err_msg=f"{name} {q}")


@pytest.mark.parametrize("net,shape", [
    (models.FC(2, width=16, out_dim=3), (3, 5)),
    (models.CNN(2, "gap", channels=8, out_dim=3), (3, 6, 6, 2)),
    (models.Myrtle(5, width=8), (2, 8, 8, 3)),
    (models.WideResNet(10, 0.5, out_dim=4, layer_norm=(1, 2, 3)), (2, 8, 8, 3)),
])
def test_models_run_finite_and_backward(net, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    out_shape, params = net.init_fn(0, shape)
    y, cache = net.forward(params, x)
    assert y.shape == out_shape == (shape[0], out_shape[-1])
    d_params, d_x = net.backward(params, cache, np.ones_like(y))
    assert d_x.shape == x.shape


def test_flatten_readout_only_computes_diagonals():
    net = models.CNN(3, "flatten")
    assert net.requirements(False) == [False] * len(net.layers)
    gap = models.CNN(3, "gap")
    assert gap.requirements(False)[0] and models.Myrtle(5).input_needs_full(False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Myrtle: `depth` must be 5, 7 or 10, got 6"):
        models.Myrtle(6)
    with pytest.raises(ValueError, match=r"WideResNet: `depth` must be 6 n \+ 4"):
        models.WideResNet(12)
    with pytest.raises(ValueError, match="CNN: `readout` must be 'flatten' or 'gap'"):
        models.CNN(2, "max")
    with pytest.raises(ValueError, match="FC: `depth` must be an integer >= 0"):
        models.FC(-1)
    with pytest.raises(TypeError, match="CNN: `activation` must be an infwide.stax layer"):
        models.CNN(2, activation=np.tanh)
