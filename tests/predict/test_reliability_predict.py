"""Predictions on a singular or indefinite train kernel (tested from outside infwide.predict):
the error reports the smallest eigenvalue and a diag_reg that fixes it, and that diag_reg
then works."""
import re

import numpy as np
import pytest

from infwide import models, predict

MSG = re.compile(r"smallest eigenvalue is (\S+) \(largest (\S+),.*Pass diag_reg=(\S+) "
                 r"\(diag_reg_absolute_scale=(True|False)\)")


def _suggestion(err, k):
    m = MSG.search(str(err))
    assert m, f"no eigenvalue / diag_reg in: {err}"
    lam_min, lam_max = float(m.group(1)), float(m.group(2).rstrip(","))
    ev = np.linalg.eigvalsh(k)
    scale = np.abs(ev).max()
    assert abs(lam_min - ev[0]) <= 1e-10 * scale + 1e-3 * abs(ev[0]), (lam_min, ev[0])
    assert abs(lam_max - ev[-1]) <= 1e-3 * scale
    return dict(diag_reg=float(m.group(3)), diag_reg_absolute_scale=m.group(4) == "True")


def _kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    x[5] = x[1]                       # a duplicated training point: singular NNGP and NTK
    net = models.FC(2, W_std=1.5, b_std=0.1)
    k = net.kernel_fn(x, None, ("nngp", "ntk"))
    a = rng.standard_normal((8, 3))
    low_rank = a @ a.T                # rank 3 of 8
    return {"duplicated-nngp": k.nngp, "duplicated-ntk": k.ntk, "rank-3": low_rank,
            "indefinite": low_rank - 0.5 * np.eye(8), "tiny-negative": k.nngp - 1e-9 * np.eye(8)}


KERNELS = _kernels()
Y = np.random.default_rng(1).standard_normal((8, 2))


def _gp(k, **reg):
    return predict.gp_inference(k, Y, **reg)("nngp", k[:3], None)


def _gd_inf(k, **reg):
    return predict.gradient_descent_mse(k, Y, **reg)(None, 0.0, 0.0, k[:3])[1]


def _gd_t(k, **reg):
    return predict.gradient_descent_mse(k, Y, learning_rate=0.5, **reg)(2.0, 0.0, 0.0, k[:3])[1]


@pytest.mark.parametrize("solver", [_gp, _gd_inf], ids=["gp_inference", "gd_mse-t=inf"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_singular_or_indefinite_reports_and_suggestion_works(name, solver):
    k = KERNELS[name]
    with pytest.raises(ValueError) as info:
        solver(k)
    reg = _suggestion(info.value, k)
    out = solver(k, **reg)
    assert np.isfinite(out).all() and out.shape == (3, 2)
    # the suggestion is not wildly larger than needed: the predictions at distinct,
    # well-determined training points stay at their targets
    if solver is _gd_inf and name.startswith("duplicated"):
        # rows 0 and 2 are distinct, well-determined training points
        np.testing.assert_allclose(out[[0, 2]], Y[[0, 2]], atol=1e-3)


def test_finite_time_indefinite_reports_and_suggestion_works():
    k = KERNELS["indefinite"]
    with pytest.raises(ValueError, match="not positive semi-definite") as info:
        _gd_t(k)
    out = _gd_t(k, **_suggestion(info.value, k))
    assert np.isfinite(out).all()


def test_finite_time_singular_needs_no_regulariser():
    """exp(-t K) is fine on a singular PSD kernel: no error, finite, and the null space of K
    keeps its initial (zero) output."""
    out = _gd_t(KERNELS["rank-3"])
    assert np.isfinite(out).all()


def test_ensemble_on_duplicated_points_reports_and_suggestion_works():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))
    x[4] = x[0]
    net = models.FC(1, W_std=1.4)
    fn = predict.gradient_descent_mse_ensemble(net.kernel_fn, x, Y[:6])
    with pytest.raises(ValueError) as info:
        fn(None, x[:2], "ntk")
    reg = _suggestion(info.value, net.kernel_fn(x, None, "ntk"))
    fn = predict.gradient_descent_mse_ensemble(net.kernel_fn, x, Y[:6], **reg)
    mean = fn(None, x[:2], "ntk")
    np.testing.assert_allclose(mean[1], Y[1], atol=1e-3)
    assert np.isfinite(mean).all()
