"""Empirical kernels, Monte Carlo and ensemble training on CuPy arrays: the same numbers as on
NumPy, CuPy arrays out. Skipped cleanly without CuPy and a CUDA device."""
import numpy as np

import infwide
from infwide import stax

from tests.conftest import cupy_on_gpu

cp, pytestmark = cupy_on_gpu()


def _net():
    return stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.Erf(),
                       stax.Dense(16, b_std=0.2), stax.Relu(), stax.Dense(3))


def test_empirical_kernels_on_gpu_equal_cpu():
    net = _net()
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    _, params = net.init_fn(0, x1.shape)
    for tr, dg in (((-1,), ()), ((), ())):
        kernel_fn = infwide.empirical_kernel_fn(net, trace_axes=tr, diagonal_axes=dg)
        cpu = kernel_fn(x1, x2, None, params)
        gpu = kernel_fn(cp.asarray(x1), cp.asarray(x2), None, params)
        for g in ("nngp", "ntk"):
            assert isinstance(getattr(gpu, g), cp.ndarray)
            np.testing.assert_allclose(cp.asnumpy(getattr(gpu, g)), getattr(cpu, g), rtol=1e-10)


def test_conv_ntk_jacobian_rows_on_gpu():
    net = stax.serial(stax.Conv(3, (2, 2), padding="SAME"), stax.Relu(), stax.Flatten(),
                      stax.Dense(2))
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 2))
    _, params = net.init_fn(0, x.shape)
    ntk_fn = infwide.empirical_ntk_fn(net)
    np.testing.assert_allclose(cp.asnumpy(ntk_fn(cp.asarray(x), None, params)),
                               ntk_fn(x, None, params), rtol=1e-10)


def test_monte_carlo_and_training_on_gpu():
    net = _net()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    mc = infwide.monte_carlo_kernel_fn(net.init_fn, net.apply_fn, 3, 2)
    np.testing.assert_allclose(cp.asnumpy(mc(cp.asarray(x), None, "ntk")), mc(x, None, "ntk"),
                               rtol=1e-10)
    members = infwide.init_ensemble(net, 0, x.shape, 3)
    cpu = infwide.train_mse(net, members, x, y, [0.0, 1.0], learning_rate=0.05)
    gpu = infwide.train_mse(net, members, cp.asarray(x), cp.asarray(y), [0.0, 1.0],
                            learning_rate=0.05)
    assert isinstance(gpu.fx_train, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(gpu.fx_train), cpu.fx_train, rtol=1e-9, atol=1e-12)
