"""GPU equals CPU: the public API on CuPy arrays against the same calls on NumPy arrays.

Needs a real NVIDIA GPU with CuPy (and numba-cuda for the fused kernels); every test skips
cleanly without one. float64 agrees to 1e-10 relative (max-norm), float32 to 1e-4.
Run with ``python -m pytest -q -m gpu`` (``bench/gpu_check`` does).
"""
import numpy as np
import pytest

from infwide import stax
from infwide.params import tree_map

pytestmark = pytest.mark.gpu


def _cupy_or_skip():
    cp = pytest.importorskip("cupy")
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:     # no driver, no device
        pytest.skip(f"no usable CUDA device: {e}")
    if n < 1:
        pytest.skip("no CUDA device")
    return cp


@pytest.fixture(scope="module")
def cp():
    return _cupy_or_skip()


def close(got, want, rtol, cp):
    """``got`` is a CuPy array whose values match the NumPy ``want`` (max-norm relative)."""
    assert isinstance(got, cp.ndarray), type(got)
    g, w = cp.asnumpy(got).astype(np.float64), np.asarray(want, np.float64)
    assert g.shape == w.shape
    err = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-300)
    assert err < rtol, err


def numpy_reference():
    """The layers' NumPy reference recursions (the CPU fusion engine off): "compare with NumPy"
    means with the same formulas, not with the CPU engine's own polynomial arc-tangent."""
    from infwide.stax._fusion import fusion_disabled
    return fusion_disabled()


def fc():
    return stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.Relu(),
                       stax.Dense(32, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(2))


def cnn_flatten():
    return stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                       stax.Conv(8, (3, 3), W_std=1.4), stax.Relu(), stax.Flatten(),
                       stax.Dense(2))


def myrtle_tiny(padding="SAME"):
    conv = lambda: stax.Conv(8, (3, 3), padding=padding, W_std=1.4, b_std=0.1)
    return stax.serial(conv(), stax.Relu(), conv(), stax.Relu(),
                       stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Relu(),
                       stax.AvgPool((2, 2), strides=(2, 2)), stax.GlobalAvgPool(),
                       stax.Dense(2, W_std=1.0))


NETS = {"fc": (fc, (6, 10)), "cnn_flatten": (cnn_flatten, (4, 6, 6, 3)),
        "myrtle": (myrtle_tiny, (3, 8, 8, 3)),
        "myrtle_circular": (lambda: myrtle_tiny("CIRCULAR"), (3, 8, 8, 3))}


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal((shape[0] - 1,) + shape[1:])


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("square", [False, True])
def test_kernel_fn_gpu_equals_cpu(cp, name, dtype, rtol, square):
    make, shape = NETS[name]
    x1, x2 = _data(shape)
    x2 = None if square else x2
    with numpy_reference():
        want = make().kernel_fn(x1, x2)
    got = make().kernel_fn(cp.asarray(x1, dtype), None if square else cp.asarray(x2, dtype))
    for f in ("nngp", "ntk", "cov1"):
        assert getattr(got, f).dtype == dtype
        close(getattr(got, f), getattr(want, f), rtol, cp)


def test_cuda_block_and_pool_on_gpu(cp):
    from infwide.kernels.cuda import reference as R
    from infwide.kernels.cuda.block import conv_block
    from infwide.kernels.cuda.pool import avg_pool_full_cuda
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((3, 8, 8, 4)), rng.standard_normal((2, 8, 8, 4))
    outer = lambda a, b: np.einsum("ahwc,bxyc->abhxwy", a, b) / 4
    cov = lambda a: np.einsum("ahwc,axyc->ahxwy", a, a) / 4
    coefs = [R.layer_coefficients(1.4, 0.1)] * 3
    acts = [(1, 0.0, 1.0, 0.0), (2, 1.0, 1.0, 0.0), (1, 0.1, 1.0, 0.0)]
    args = (outer(x1, x2), 0.1 * outer(x1, x2), cov(x1), cov(x2))
    for pad in ("SAME", "VALID", "CIRCULAR"):
        want = R.conv_block_ref(np, *args, coefs, acts, pad)
        got = conv_block(*[cp.asarray(a) for a in args], coefs, acts, pad)
        for g, w in zip(got, want):
            close(g, w, 1e-12, cp)
        got32 = conv_block(*[cp.asarray(a, np.float32) for a in args], coefs, acts, pad)
        close(got32[0], want[0], 1e-5, cp)
    close(avg_pool_full_cuda(cp.asarray(args[0]), 2, (2, 2), (2, 2)),
          R.avg_pool_full(np, args[0], 2, (2, 2), (2, 2)), 1e-12, cp)


def test_apply_forward_backward_on_gpu(cp):
    net = cnn_flatten()
    x = np.random.default_rng(1).standard_normal((4, 6, 6, 3))
    _, params = net.init_fn(0, x.shape)
    close(net.apply_fn(params, cp.asarray(x)), net.apply_fn(params, x), 1e-10, cp)
    p32 = tree_map(lambda a: a.astype(np.float32), params)   # float64 params would promote
    y32 = net.apply_fn(p32, cp.asarray(x, np.float32))
    assert y32.dtype == np.float32
    close(y32, net.apply_fn(params, x), 1e-4, cp)
    from infwide.device import params_to_device
    p_gpu = params_to_device(params, cp.asarray(x))
    y, cache = net.forward(p_gpu, cp.asarray(x))
    ct = cp.ones_like(y)
    grads, dx = net.backward(p_gpu, cache, ct)
    y_np, cache_np = net.forward(params, x)
    grads_np, dx_np = net.backward(params, cache_np, np.ones_like(y_np))
    close(dx, dx_np, 1e-10, cp)
    close(grads[0][0], grads_np[0][0], 1e-10, cp)


def test_training_gradients_on_gpu(cp):
    from infwide import training
    net = fc()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 10)), rng.standard_normal((5, 2))
    _, params = net.init_fn(0, x.shape)
    from infwide.device import params_to_device
    vg = training.value_and_grad(net, "mse")
    v_np, g_np = vg(params, x, y)
    v_gpu, g_gpu = vg(params_to_device(params, cp.asarray(x)), cp.asarray(x), cp.asarray(y))
    assert abs(float(v_gpu) - float(v_np)) <= 1e-10 * abs(float(v_np))
    close(g_gpu[0][0], g_np[0][0], 1e-10, cp)


def test_empirical_ntk_on_gpu(cp):
    from infwide import empirical
    net = fc()
    x1, x2 = _data((4, 10))
    _, params = net.init_fn(0, x1.shape)
    from infwide.device import params_to_device
    fn = empirical.empirical_kernel_fn(net.apply_fn)
    want = fn(x1, x2, "ntk", params)
    got = fn(cp.asarray(x1), cp.asarray(x2), "ntk", params_to_device(params, cp.asarray(x1)))
    close(got, want, 1e-10, cp)


def _predict_inputs(seed=4):
    rng = np.random.default_rng(seed)
    x_tr, x_te = rng.standard_normal((8, 10)), rng.standard_normal((3, 10))
    y_tr = rng.standard_normal((8, 2))
    return x_tr, x_te, y_tr


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_predict_on_gpu(cp, dtype, rtol):
    from infwide import predict
    x_tr, x_te, y_tr = _predict_inputs()
    kfn = fc().kernel_fn
    k_tt, k_st = kfn(x_tr, None, "ntk"), kfn(x_te, x_tr, "ntk")
    g = lambda a: cp.asarray(a, dtype)
    ts = np.array([0.5, 2.0, np.inf])
    want = predict.gradient_descent_mse(k_tt, y_tr, diag_reg=1e-3)(ts, 0., 0., k_st)
    got = predict.gradient_descent_mse(g(k_tt), g(y_tr), diag_reg=1e-3)(ts, 0., 0., g(k_st))
    for a, b in zip(got, want):
        close(a, b, rtol, cp)
    want = predict.gp_inference(k_tt, y_tr, diag_reg=1e-3)("ntk", k_st)
    close(predict.gp_inference(g(k_tt), g(y_tr), diag_reg=1e-3)("ntk", g(k_st)), want, rtol, cp)
    lr_np = predict.max_learning_rate(k_tt)
    lr_gpu = predict.max_learning_rate(g(k_tt))
    assert abs(float(lr_gpu) - float(lr_np)) <= max(rtol, 1e-6) * abs(float(lr_np))


def test_predict_ensemble_and_ode_on_gpu(cp):
    from infwide import predict
    x_tr, x_te, y_tr = _predict_inputs(5)
    kfn = fc().kernel_fn
    with numpy_reference():
        ens = predict.gradient_descent_mse_ensemble(kfn, x_tr, y_tr, diag_reg=1e-3)
        want = ens(1.0, x_te, "ntk", compute_cov=True)
    ens_gpu = predict.gradient_descent_mse_ensemble(kfn, cp.asarray(x_tr), cp.asarray(y_tr),
                                                    diag_reg=1e-3)
    got = ens_gpu(1.0, cp.asarray(x_te), "ntk", compute_cov=True)
    close(got.mean, want.mean, 1e-10, cp)
    close(got.covariance, want.covariance, 1e-10, cp)
    k_tt, k_st = kfn(x_tr, None, "ntk"), kfn(x_te, x_tr, "ntk")
    ode = predict.gradient_descent(predict.mse, k_tt, y_tr, learning_rate=0.5)
    want = ode(1.0, 0., 0., k_st)
    got = predict.gradient_descent(predict.mse, cp.asarray(k_tt), cp.asarray(y_tr),
                                   learning_rate=0.5)(1.0, 0., 0., cp.asarray(k_st))
    for a, b in zip(got, want):   # the ODE runs on the host at its own tolerance
        close(a, b, 1e-6, cp)


def test_batched_kernel_on_gpu(cp):
    from infwide import batch
    x1, x2 = _data((7, 6, 6, 3))
    with numpy_reference():
        want = cnn_flatten().kernel_fn(x1, x2)
    got = batch(cnn_flatten().kernel_fn, batch_size=3)(cp.asarray(x1), cp.asarray(x2))
    close(got.nngp, want.nngp, 1e-10, cp)
    close(got.ntk, want.ntk, 1e-10, cp)


def test_torch_cuda_tensor_round_trip(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    x1, x2 = _data((4, 10))
    with numpy_reference():
        want = fc().kernel_fn(x1, x2)
    t1, t2 = torch.as_tensor(x1, device="cuda"), torch.as_tensor(x2, device="cuda")
    got = fc().kernel_fn(t1, t2)
    assert isinstance(got.nngp, torch.Tensor) and got.nngp.is_cuda
    np.testing.assert_allclose(got.nngp.cpu().numpy(), want.nngp, rtol=1e-10)
