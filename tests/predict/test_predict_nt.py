"""infwide.predict against Neural Tangents' predict on stored float64 fixtures (1e-6 relative).

The fixtures come from tests/nt_fixtures/make_predict.py (run with the NT oracle); every case
in its spec is replayed here: all five functions, t in {None, scalar, array, inf}, several
`get`, `trace_axes` in {(-1,), (), (1,)}, and diag_reg relative / absolute.
"""
import collections
import json

import numpy as np
import pytest

from infwide import predict

from tests.conftest import nt_fixture

FIX = nt_fixture("predict.npz")
SPEC = json.loads(str(FIX["spec"]))
PROBLEMS = SPEC["problems"]
T_VALUES = {"none": None, "scalar": 0.7, "array": np.array([[0.0, 0.5], [3.0, 40.0]]),
            "inf": np.array([np.inf])}
KT = collections.namedtuple("Kernel", "nngp ntk")


def a(key):
    return FIX[key]


def lookup_kernel_fn(p):
    """kernel_fn(x1, x2=None, get=None) serving the stored kernels of problem ``p``."""
    x_train = a(p["x_train"])

    def kernel_fn(x1, x2=None, get=None):
        is_train = x1.shape == x_train.shape and np.allclose(x1, x_train)
        part = "dd" if is_train else ("tt" if x2 is None else "td")
        names = ("nngp", "ntk") if get is None else ((get,) if isinstance(get, str) else get)
        return collections.namedtuple("Kernel", names)(*(a(p[f"{g}_{part}"]) for g in names))
    return kernel_fn


def assert_same(ref, got, where):
    if isinstance(ref, dict):
        assert tuple(got._fields) == tuple(ref), where
        for f in ref:
            assert_same(ref[f], getattr(got, f), f"{where}.{f}")
    elif isinstance(ref, list):
        assert isinstance(got, tuple) and len(got) == len(ref), where
        for i, (r, g) in enumerate(zip(ref, got)):
            assert_same(r, g, f"{where}[{i}]")
    else:
        r = a(ref)
        g = np.asarray(got)
        assert g.shape == r.shape, f"{where}: shape {g.shape} != NT's {r.shape}"
        scale = max(np.abs(r).max(), 1e-300) if r.size else 1.0
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6 * scale, err_msg=where)


def _ids(case):
    return "-".join(str(case.get(k)) for k in ("fn", "problem", "reg", "absolute", "t", "get",
                                                "cov", "test", "k_tt", "loss", "momentum",
                                                "size") if k in case)


CASES = SPEC["cases"]


def _get(g):
    return tuple(g) if isinstance(g, list) else g


@pytest.mark.parametrize("case", [c for c in CASES if c["fn"] == "gradient_descent_mse"],
                         ids=_ids)
def test_gradient_descent_mse_matches_nt(case):
    p = PROBLEMS[case["problem"]]
    pred = predict.gradient_descent_mse(a(p["ntk_dd"]), a(p["y"]), learning_rate=case["lr"],
                                        diag_reg=case["reg"],
                                        diag_reg_absolute_scale=case["absolute"],
                                        trace_axes=tuple(p["trace_axes"]))
    fx_train_0 = None if case.get("no_train") else a(p["fx_train_0"])
    got = pred(T_VALUES[case["t"]], fx_train_0, a(p["fx_test_0"]), a(p["ntk_td"]))
    assert_same(case["out"], got, _ids(case))


@pytest.mark.parametrize("case", [c for c in CASES if c["fn"] == "gradient_descent_mse_ensemble"],
                         ids=_ids)
def test_ensemble_matches_nt(case):
    p = PROBLEMS[case["problem"]]
    pred = predict.gradient_descent_mse_ensemble(
        lookup_kernel_fn(p), a(p["x_train"]), a(p["y"]), learning_rate=case["lr"],
        diag_reg=case["reg"], diag_reg_absolute_scale=case["absolute"],
        trace_axes=tuple(p["trace_axes"]))
    x_test = a(p["x_test"]) if case["test"] else None
    got = pred(T_VALUES[case["t"]], x_test, _get(case["get"]), case["cov"])
    assert_same(case["out"], got, _ids(case))


@pytest.mark.parametrize("case", [c for c in CASES if c["fn"] == "gp_inference"], ids=_ids)
def test_gp_inference_matches_nt(case):
    p = PROBLEMS[case["problem"]]
    pred = predict.gp_inference(KT(a(p["nngp_dd"]), a(p["ntk_dd"])), a(p["y"]),
                                diag_reg=case["reg"], diag_reg_absolute_scale=case["absolute"],
                                trace_axes=tuple(p["trace_axes"]))
    k_tt = KT(a(p["nngp_tt"]), a(p["ntk_tt"])) if case["k_tt"] else None
    got = pred(_get(case["get"]), KT(a(p["nngp_td"]), a(p["ntk_td"])), k_tt)
    assert_same(case["out"], got, _ids(case))


@pytest.mark.parametrize("case", [c for c in CASES if c["fn"] == "gradient_descent"], ids=_ids)
def test_gradient_descent_ode_matches_nt(case):
    p = PROBLEMS[case["problem"]]
    loss = {"cross_entropy": predict.cross_entropy, "mse": predict.mse}[case["loss"]]
    pred = predict.gradient_descent(loss, a(p["ntk_dd"]), a(case["y"]), learning_rate=case["lr"],
                                    momentum=case["momentum"])
    got = pred(np.array(case["t"]), a(p["fx_train_0"]), a(p["fx_test_0"]), a(p["ntk_td"]))
    assert_same(case["out"], got, _ids(case))


@pytest.mark.parametrize("case", [c for c in CASES if c["fn"] == "max_learning_rate"], ids=_ids)
def test_max_learning_rate_matches_nt(case):
    p = PROBLEMS[case["problem"]]
    got = predict.max_learning_rate(a(p["ntk_dd"]), y_train_size=case["size"],
                                    momentum=case["momentum"])
    assert isinstance(got, float)
    np.testing.assert_allclose(got, a(case["out"]), rtol=1e-9)
