"""Spatial layers against Neural Tangents: the same ``stax`` expression evaluated by both.

Fixtures: tests/nt_fixtures/make_spatial.py (run with the NT oracle's python) writes each
case's expression, inputs and NT's float64 nngp/ntk for (x1, x2) and (x1, None).
"""

import numpy as np
import pytest

from infwide import stax  # noqa: F401  (the expressions name it)

from tests.conftest import nt_fixture

FIX = nt_fixture("spatial.npz")
CASES = sorted({k.split("/")[0] for k in FIX.files})


def _close(got, ref, what):
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != NT's {ref.shape}"
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9 * scale, err_msg=what)


@pytest.mark.parametrize("name", CASES)
def test_matches_neural_tangents(name):
    kernel_fn = eval(str(FIX[f"{name}/expr"]))[2]
    x1, x2 = FIX[f"{name}/x1"], FIX[f"{name}/x2"]
    k12 = kernel_fn(x1, x2)
    k11 = kernel_fn(x1, None)
    for tag, k in (("12", k12), ("11", k11)):
        _close(k.nngp, FIX[f"{name}/nngp{tag}"], f"{name} nngp{tag}")
        _close(k.ntk, FIX[f"{name}/ntk{tag}"], f"{name} ntk{tag}")
    _close(k12.cov1, FIX[f"{name}/cov1"], f"{name} cov1")


def test_fixture_covers_every_layer_and_padding():
    exprs = " ".join(str(FIX[f"{n}/expr"]) for n in CASES)
    for layer in ("Conv(", "ConvTranspose(", "ConvLocal(", "AvgPool(", "SumPool(",
                  "GlobalAvgPool(", "GlobalSumPool(", "Flatten(", "LayerNorm(", "Dropout("):
        assert f"stax.{layer}" in exprs, layer
    for pad in ("'SAME'", "'CIRCULAR'", "Conv(3, (3, 3), W_std"):
        assert pad in exprs
