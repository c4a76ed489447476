"""Predictions at scale: memory-mapped kernels from a store go through predict.gp_inference and
gradient_descent_mse; a batched kernel_fn drives gradient_descent_mse_ensemble."""
import numpy as np
import pytest

from infwide import batch, predict, stax


def net():
    return stax.serial(stax.Dense(32, W_std=1.5, b_std=0.2), stax.Relu(), stax.Dense(1))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(5)
    x_train, x_test = rng.standard_normal((17, 4)), rng.standard_normal((6, 4))
    y_train = np.sin(x_train.sum(1, keepdims=True))
    return x_train, x_test, y_train


def test_memmap_kernels_through_gp_inference(problem, tmp_path):
    x_train, x_test, y_train = problem
    kf = net().kernel_fn
    get = ("nngp", "ntk")
    k_dd = batch(kf, batch_size=5, store=tmp_path / "dd")(x_train, None, get)
    k_td = batch(kf, batch_size=4, store=tmp_path / "td")(x_test, x_train, get)
    k_tt = batch(kf, batch_size=4, store=tmp_path / "tt")(x_test, None, "nngp")
    assert isinstance(k_dd.ntk, np.memmap) and isinstance(k_td.nngp, np.memmap)
    got = predict.gp_inference(k_dd, y_train, diag_reg=1e-3)(
        ("nngp", "ntk"), k_test_train=k_td, k_test_test=k_tt)
    ref = predict.gp_inference(kf(x_train, None, get), y_train, diag_reg=1e-3)(
        ("nngp", "ntk"), k_test_train=kf(x_test, x_train, get),
        k_test_test=kf(x_test, None, "nngp"))
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.mean, r.mean, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(g.covariance, r.covariance, rtol=1e-6, atol=1e-9)
    # a plain np.memmap (as a user would open a stored kernel) works as well
    mm = np.load(tmp_path / "dd" / "result" / "ntk.npy", mmap_mode="r")
    fx = predict.gradient_descent_mse(mm, y_train, diag_reg=1e-3)(
        t=3.0, fx_train_0=0., fx_test_0=0., k_test_train=np.asarray(k_td.ntk))
    fx_ref = predict.gradient_descent_mse(kf(x_train, None, "ntk"), y_train, diag_reg=1e-3)(
        t=3.0, fx_train_0=0., fx_test_0=0., k_test_train=kf(x_test, x_train, "ntk"))
    for a, b in zip(fx, fx_ref):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_batched_kernel_fn_in_ensemble(problem):
    x_train, x_test, y_train = problem
    kf = net().kernel_fn
    batched = predict.gradient_descent_mse_ensemble(batch(kf, batch_size=4), x_train, y_train,
                                                    diag_reg=1e-4)
    plain = predict.gradient_descent_mse_ensemble(kf, x_train, y_train, diag_reg=1e-4)
    for t in (None, 2.5):
        got = batched(t, x_test, ("nngp", "ntk"), compute_cov=True)
        ref = plain(t, x_test, ("nngp", "ntk"), compute_cov=True)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g.mean, r.mean, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(g.covariance, r.covariance, rtol=1e-6, atol=1e-9)
