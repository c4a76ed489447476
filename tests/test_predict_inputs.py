"""infwide.predict at its boundary: bad inputs, memory-mapped kernels, caching, dtypes."""
import collections
import re
import tracemalloc

import numpy as np
import pytest

import infwide.predict._factor as factor_mod
from infwide import predict, stax

KT = collections.namedtuple("Kernel", "nngp ntk")
N, M, C = 9, 4, 2


@pytest.fixture(scope="module")
def ks():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N + M, 3))
    net = stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1))
    k = net.kernel_fn(x, None, ("nngp", "ntk"))
    return dict(x=x, net=net, nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk),
                y=rng.standard_normal((N, C)), g0=rng.standard_normal((M, C)))


def _suggested(msg):
    m = re.search(r"Pass diag_reg=([0-9.e+-]+) \(diag_reg_absolute_scale=(True|False)\)", msg)
    return float(m.group(1)), m.group(2) == "True"


# -- refused inputs ---------------------------------------------------------------------------
def test_nonsymmetric_train_kernel_is_refused(ks):
    bad = ks["ntk"][:N, :N].copy()
    bad[0, 1] += 0.1
    with pytest.raises(ValueError, match="not symmetric"):
        predict.gradient_descent_mse(bad, ks["y"])(1.0)
    with pytest.raises(ValueError, match="not symmetric"):
        predict.gp_inference(bad, ks["y"])("nngp", ks["ntk"][N:, :N])
    with pytest.raises(ValueError, match="not symmetric"):
        predict.max_learning_rate(bad)
    with pytest.raises(ValueError, match="not symmetric"):
        predict.gradient_descent(predict.mse, bad, ks["y"])


def test_singular_kernel_names_eigenvalue_and_a_working_diag_reg(ks):
    x = np.vstack([ks["x"][:N - 1], ks["x"][:1]])  # a duplicated training point
    k = ks["net"].kernel_fn(x, None, "ntk")
    k_td = ks["net"].kernel_fn(ks["x"][N:], x, "ntk")
    pred = predict.gradient_descent_mse(k, ks["y"])
    with pytest.raises(ValueError, match="smallest eigenvalue") as err:
        pred(None, 0.0, ks["g0"], k_td)
    reg, absolute = _suggested(str(err.value))
    assert 0 < reg < 1e-6 and not absolute
    out = predict.gradient_descent_mse(k, ks["y"], diag_reg=reg)(None, 0.0, ks["g0"], k_td)
    assert np.isfinite(out[1]).all()
    # finite times need no inverse: fine without regulariser; t=inf on the test set needs it
    assert np.isfinite(pred(5.0, 0.0, ks["g0"], k_td)[1]).all()
    with pytest.raises(ValueError, match="singular"):
        pred(np.inf, 0.0, ks["g0"], k_td)
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        predict.gp_inference(k, ks["y"])("ntk", k_td)


def test_indefinite_kernel_is_refused_with_a_fix(ks):
    dd = ks["ntk"][:N, :N]
    mean_diag = np.trace(dd) / N
    shifted = dd - (np.linalg.eigvalsh(dd)[0] + 0.05 * mean_diag) * np.eye(N)
    very = dd - 0.5 * np.eye(N) * np.linalg.eigvalsh(dd)[-1]  # mean diagonal < 0
    for k, absolute in ((shifted, False), (shifted, True), (very, False)):
        with pytest.raises(ValueError, match="not positive semi-definite") as err:
            predict.gradient_descent_mse(k, ks["y"], diag_reg_absolute_scale=absolute)(1.0)
        assert "smallest eigenvalue is -" in str(err.value)
        reg, absolute = _suggested(str(err.value))
        out = predict.gradient_descent_mse(k, ks["y"], diag_reg=reg,
                                           diag_reg_absolute_scale=absolute)(1.0)
        assert np.isfinite(out).all()


def test_shape_mismatches_name_both_shapes(ks):
    dd, td = ks["ntk"][:N, :N], ks["ntk"][N:, :N]
    with pytest.raises(ValueError, match=r"\(9, 9\).*\(10, 2\)"):
        predict.gradient_descent_mse(dd, np.zeros((N + 1, C)))
    with pytest.raises(ValueError, match=r"\(4, 8\).*\(9, 2\)"):
        predict.gradient_descent_mse(dd, ks["y"])(1.0, 0.0, ks["g0"], td[:, :-1])
    with pytest.raises(ValueError, match=r"fx_test_0.*\(3, 2\).*\(4, 2\)"):
        predict.gradient_descent_mse(dd, ks["y"])(1.0, 0.0, ks["g0"][:3], td)
    with pytest.raises(ValueError, match=r"k_test_test.*\(3, 3\).*\(4, 4\)"):
        predict.gp_inference(dd, ks["y"])("nngp", td, ks["nngp"][N:N + 3, N:N + 3])
    with pytest.raises(ValueError, match=r"fx_train_0.*\(9, 3\)"):
        predict.gradient_descent_mse(dd, ks["y"])(1.0, np.zeros((N, 3)))


def _with_nan(a):
    a = np.array(a, dtype=float)
    a.flat[0] = np.nan
    return a


@pytest.mark.parametrize("which", ["k_train_train", "y_train", "fx_train_0", "fx_test_0",
                                   "k_test_train", "t"])
def test_nan_inputs_are_refused_mse(ks, which):
    args = dict(k_train_train=ks["ntk"][:N, :N], y_train=ks["y"], fx_train_0=ks["y"] * 0.1,
                fx_test_0=ks["g0"], k_test_train=ks["ntk"][N:, :N], t=np.array([1.0, 2.0]))
    args[which] = _with_nan(args[which])
    with pytest.raises(ValueError, match="NaN"):
        pred = predict.gradient_descent_mse(args["k_train_train"], args["y_train"])
        pred(args["t"], args["fx_train_0"], args["fx_test_0"], args["k_test_train"])


def test_nan_inputs_are_refused_elsewhere(ks):
    dd, td, tt = ks["nngp"][:N, :N], ks["nngp"][N:, :N], ks["nngp"][N:, N:]
    with pytest.raises(ValueError, match="NaN"):
        predict.gp_inference(dd, ks["y"])("nngp", td, _with_nan(tt))
    with pytest.raises(ValueError, match="NaN"):
        predict.gp_inference(dd, ks["y"])("nngp", _with_nan(td))
    ens = predict.gradient_descent_mse_ensemble(ks["net"].kernel_fn, ks["x"][:N], ks["y"])
    with pytest.raises(ValueError, match="NaN"):
        ens(1.0, _with_nan(ks["x"][N:]))
    with pytest.raises(ValueError, match="NaN"):
        predict.gradient_descent(predict.mse, _with_nan(dd), ks["y"])
    with pytest.raises(ValueError, match="NaN"):
        predict.max_learning_rate(_with_nan(dd))


def test_nothing_to_predict_and_bad_get(ks):
    pred = predict.gradient_descent_mse(ks["ntk"][:N, :N], ks["y"])
    with pytest.raises(ValueError, match="nothing to predict"):
        pred(1.0, None, None)
    with pytest.raises(ValueError, match="need `k_test_train`"):
        pred(1.0, 0.0, ks["g0"])
    with pytest.raises(ValueError, match="unknown `get`"):
        predict.gp_inference(ks["ntk"][:N, :N], ks["y"])("ntkk")
    with pytest.raises(ValueError, match="unknown `get`"):
        predict.gradient_descent_mse_ensemble(ks["net"].kernel_fn, ks["x"][:N], ks["y"])(
            1.0, None, "ntkgp")
    with pytest.raises(ValueError, match="needs both the NNGP and the NTK"):
        predict.gp_inference(ks["ntk"][:N, :N], ks["y"])("ntk", ks["ntk"][N:, :N],
                                                         ks["nngp"][N:, N:])


# -- memory-mapped kernels ----------------------------------------------------------------
def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memmap_kernel_is_read_once_and_gives_same_results(tmp_path):
    n = 300
    rng = np.random.default_rng(0)
    j = rng.standard_normal((n, n + 20))
    k = j @ j.T / n
    path = tmp_path / "k.f64"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=(n, n))
    mm[:] = k
    mm.flush()
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=(n, n))
    y = rng.standard_normal((n, 1))
    ts = np.array([1.0, 10.0])
    ref = predict.gradient_descent_mse(k, y)(ts)
    got = predict.gradient_descent_mse(mm, y)(ts)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # one working copy of the kernel (plus LAPACK's divide-and-conquer workspace, ~2 n^2):
    # never a second full copy on top of the memory map
    predict.gradient_descent_mse(k[:5, :5], y[:5])(ts)  # warm up imports before measuring
    peak_mm = _peak_bytes(lambda: predict.gradient_descent_mse(mm, y)(ts))
    peak_ram = _peak_bytes(lambda: predict.gradient_descent_mse(k, y)(ts))
    assert peak_mm <= peak_ram + 0.05 * k.nbytes
    assert peak_mm < 3.6 * k.nbytes, peak_mm / k.nbytes
    # float32 memmap, float64 factorisation: the conversion is the working copy
    mm32 = np.memmap(tmp_path / "k.f32", dtype=np.float32, mode="w+", shape=(n, n))
    mm32[:] = k
    got32 = predict.gradient_descent_mse(mm32, y.astype(np.float32))(ts)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, rtol=2e-4, atol=1e-5)


# -- caching -------------------------------------------------------------------------------
def test_factorisations_are_computed_once(ks, monkeypatch):
    counts = collections.Counter()
    for name in ("eigh", "cholesky"):
        orig = getattr(factor_mod, name)

        def counted(xp, a, _orig=orig, _name=name):
            counts[_name] += 1
            return _orig(xp, a)
        monkeypatch.setattr(factor_mod, name, counted)
    ens = predict.gradient_descent_mse_ensemble(ks["net"].kernel_fn, ks["x"][:N], ks["y"],
                                                diag_reg=1e-3)
    for t in (1.0, np.array([2.0, 30.0]), None):
        for x_test in (ks["x"][N:], ks["x"][N + 1:], None):
            ens(t, x_test, None, True)
    assert counts["eigh"] == 2  # NNGP and NTK, once each
    assert counts["cholesky"] == 2
    counts.clear()
    pred = predict.gradient_descent_mse(ks["ntk"][:N, :N], ks["y"])
    for t in (1.0, 2.0, None, None):
        pred(t, 0.0, ks["g0"], ks["ntk"][N:, :N])
    assert counts == {"eigh": 1, "cholesky": 1}


# -- dtypes, kernels as objects, kernel_fn arguments ------------------------------------------
def test_output_dtypes_follow_inputs(ks):
    for dt in (np.float32, np.float64):
        dd, td, tt = (ks["ntk"][:N, :N].astype(dt), ks["ntk"][N:, :N].astype(dt),
                      ks["nngp"][N:, N:].astype(dt))
        y = ks["y"].astype(dt)
        f, g = predict.gradient_descent_mse(dd, y)(np.array([1.0]), y, ks["g0"].astype(dt), td)
        assert f.dtype == dt and g.dtype == dt
        out = predict.gp_inference(dd, y)("nngp", td, tt)
        assert out.mean.dtype == dt and out.covariance.dtype == dt
    yi = np.arange(N * C).reshape(N, C)
    assert predict.gradient_descent_mse(ks["ntk"][:N, :N], yi)(1.0).dtype == np.float64


def test_kernel_objects_are_accepted(ks):
    kf = ks["net"].kernel_fn
    x_tr, x_te = ks["x"][:N], ks["x"][N:]
    k_dd, k_td, k_tt = kf(x_tr), kf(x_te, x_tr), kf(x_te)
    a = predict.gp_inference(k_dd, ks["y"], diag_reg=1e-2)(None, k_td, k_tt)
    b = predict.gp_inference(KT(k_dd.nngp, k_dd.ntk), ks["y"], diag_reg=1e-2)(
        None, KT(k_td.nngp, k_td.ntk), KT(k_tt.nngp, k_tt.ntk))
    for g in ("nngp", "ntk"):
        np.testing.assert_array_equal(getattr(a, g).covariance, getattr(b, g).covariance)


def test_ntk_only_covariance_with_singular_nngp(ks):
    """get='ntk' needs a square root of the NNGP without its eigendecomposition: by Cholesky,
    or by eigenvalues when the NNGP is singular (duplicated point). Checked against the
    formula K_tt + Q K Q^T - (Q K_Dt + h.c.) written out with NumPy."""
    x = np.vstack([ks["x"][:N - 1], ks["x"][:1]])
    x_te = ks["x"][N:]
    kf = ks["net"].kernel_fn
    k_dd, k_td, k_tt = kf(x), kf(x_te, x), kf(x_te, None, "nngp")
    ts = np.array([0.5, 7.0])
    r_abs = 1e-2 * np.trace(k_dd.ntk) / N
    lam, v = np.linalg.eigh(k_dd.ntk + r_abs * np.eye(N))
    for diag_reg in (1e-2,):
        ens = predict.gradient_descent_mse_ensemble(kf, x, ks["y"], diag_reg=diag_reg)
        got = ens(ts, x_te, "ntk", True).covariance
        both = predict.gradient_descent_mse_ensemble(kf, x, ks["y"], diag_reg=diag_reg)(
            ts, x_te, None, True).ntk.covariance
        np.testing.assert_allclose(got, both, rtol=1e-9, atol=1e-12)
        for i, t in enumerate(ts):
            h = (1 - np.exp(-lam * t / ks["y"].size)) / lam
            q = k_td.ntk @ v @ np.diag(h) @ v.T
            cross = q @ k_td.nngp.T
            want = k_tt + q @ k_dd.nngp @ q.T - cross - cross.T
            np.testing.assert_allclose(got[i], want, rtol=1e-8, atol=1e-10)


def test_kernel_fn_keyword_arguments_follow_nt_rules(ks):
    seen = []

    def kernel_fn(x1, x2=None, get=None, scale=1.0, pair=None):
        seen.append((x1.shape[0], None if x2 is None else x2.shape[0], scale, pair))
        return ks["net"].kernel_fn(x1 * scale, None if x2 is None else x2 * scale, get)
    x_tr, x_te = ks["x"][:N], ks["x"][N:]
    a1, a2 = np.ones(2), np.zeros(2)
    ens = predict.gradient_descent_mse_ensemble(kernel_fn, x_tr, ks["y"], scale=2.0,
                                                pair=(a1, a1))
    ens(1.0, x_te, "nngp", True, pair=(a2, a2))
    td = [s for s in seen if s[1] == N][0]
    assert td[2] == 2.0 and td[3][0] is a2 and td[3][1] is a1
    with pytest.raises(ValueError, match="`scale`.*must agree"):
        ens(1.0, x_te, "nngp", scale=3.0)
