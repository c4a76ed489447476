"""Every nonlinearity against Neural Tangents (fixtures from nt_fixtures/make_activations.py).

Each case is one activation expression evaluated inside small networks: fully connected,
convolutional read out by Flatten (diagonal spatial covariances) and by GlobalAvgPool (full
spatial covariances). NNGP, NTK (for (x1, x2) and (x1, None)) and cov1 must agree to 1e-6
relative in float64, with these documented exceptions, where Neural Tangents is wrong or
ill-conditioned (and infwide is checked otherwise):

- RectifiedMonomial: NT's autodiff of arccos gives NaN at k12^2 = k11 k22 (every cov1 it
  computes with a full formula, hence every later layer): compared where NT is finite; infwide
  is checked by Monte Carlo and the closed form at x1 == x2 (test_activations*.py).
- Sign, (x1, None) in the diagonal-spatial network: 1 - 2 theta / pi has infinite slope at
  theta = 0, so the ~1e-16 rounding difference between an input's nngp diagonal and its cov1
  becomes ~1e-5 after two layers, in either library: compared to 1e-4.
- Sign, cov1 of the GlobalAvgPool network: NT sets every nonzero entry of a full cov1 to 1;
  infwide's is checked by Monte Carlo in test_activations_mc.py.
- ElementwiseNumerical(erf, 60): NT's tensor Gauss-Hermite rule is off by 7e-7; infwide's
  quadrature matches the closed-form Erf to 1e-10 (checked here), so the NT comparison is 2e-6.
"""
import json

import numpy as np
import pytest
from scipy.special import erf

from infwide import stax

from tests.conftest import nt_fixture
from tests.stax.test_activations import API_NONLINEARITIES

DATA = nt_fixture("activations.npz")
SPEC = json.loads(str(DATA["cases"]))
CASES = [(key, arch) for key, (_, archs) in SPEC["acts"].items() for arch in archs]
ENV = {"stax": stax, "xp": np, "jax_erf": erf}
QUANTITIES = ("nngp", "ntk", "cov1", "nngp_self", "ntk_self")


def _net(key, arch, act=None):
    return eval(SPEC["archs"][arch].replace("ACT", act or SPEC["acts"][key][0]), ENV)


def _ours(key, arch):
    net = _net(key, arch)
    x1, x2 = DATA[f"x1|{arch}"], DATA[f"x2|{arch}"]
    k, kk = net.kernel_fn(x1, x2), net.kernel_fn(x1, None)
    return {"nngp": k.nngp, "ntk": k.ntk, "cov1": k.cov1, "nngp_self": kk.nngp,
            "ntk_self": kk.ntk}


def _tolerance(key, arch, name):
    if key == "sign" and arch == "full" and name == "cov1":
        return None
    if key == "sign" and arch == "diag" and name.endswith("_self"):
        return 1e-4
    if key == "numerical_erf":
        return 2e-6
    return 1e-6


@pytest.mark.parametrize("key, arch", CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_matches_neural_tangents(key, arch):
    ours = _ours(key, arch)
    for name in QUANTITIES:
        val, ref = ours[name], DATA[f"{key}|{arch}|{name}"]
        assert val.shape == ref.shape, (name, val.shape, ref.shape)
        assert np.all(np.isfinite(val)), f"{key} {arch} {name}: not finite"
        tol = _tolerance(key, arch, name)
        if tol is None:
            continue
        finite = np.isfinite(ref)
        if not key.startswith("rectified"):
            assert finite.all(), f"fixture {key} {arch} {name} has NaN"
        if finite.any():
            scale = np.abs(ref[finite]).max()
            np.testing.assert_allclose(val[finite], ref[finite], rtol=tol, atol=tol * scale,
                                       err_msg=f"{key} {arch} {name}")


def test_nt_is_wrong_where_documented():
    """The exceptions above are real: NT has NaN for RectifiedMonomial, ~1 for Sign's cov1."""
    assert np.isnan(DATA["rectified1|fc|nngp"]).all()
    assert np.isnan(DATA["rectified2|diag|nngp_self"]).any()
    ours = _ours("sign", "full")["cov1"]
    assert np.max(np.abs(ours - DATA["sign|full|cov1"])) > 0.5


def test_numerical_erf_matches_the_closed_form():
    x1, x2 = DATA["x1|fc"], DATA["x2|fc"]
    a = _net("numerical_erf", "fc").kernel_fn(x1, x2)
    b = _net(None, "fc", "stax.Erf()").kernel_fn(x1, x2)
    for u, v in ((a.nngp, b.nngp), (a.ntk, b.ntk)):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-10 * np.abs(v).max())


def test_every_api_nonlinearity_has_a_fixture():
    text = " ".join(act for act, _ in SPEC["acts"].values())
    for name in API_NONLINEARITIES:
        assert f"stax.{name}(" in text, name
    assert {"fc", "diag", "full"} <= {a for _, a in CASES}
