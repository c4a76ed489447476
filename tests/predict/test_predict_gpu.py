"""infwide.predict on CuPy arrays (cuSOLVER eigh/Cholesky): same numbers as NumPy, CuPy out.

Skipped cleanly without CuPy and a CUDA device.
"""
import collections

import numpy as np
import pytest

from infwide import predict

from tests.conftest import cupy_on_gpu

cp, pytestmark = cupy_on_gpu()

KT = collections.namedtuple("Kernel", "nngp ntk")
N, M, C = 40, 7, 3


def _problem():
    rng = np.random.default_rng(5)
    out = {}
    for g in ("nngp", "ntk"):
        j = rng.standard_normal((N + M, 60))
        out[g] = j @ j.T / 60
    out["y"] = rng.standard_normal((N, C))
    out["g0"] = rng.standard_normal((M, C))
    return out


def _lookup(p, to):
    def kernel_fn(x1, x2=None, get=None):
        if x1.shape[0] == N:
            sl = (slice(None, N), slice(None, N))
        else:
            sl = (slice(N, None), slice(N, None) if x2 is None else slice(None, N))
        return KT(*(to(p[g][sl]) if g in get else None for g in ("nngp", "ntk")))
    return kernel_fn


@pytest.mark.parametrize("factor_dtype", [None, np.float32])
def test_gpu_matches_cpu(factor_dtype):
    p = _problem()
    ts = np.array([0.5, 5.0, np.inf])
    outs = {}
    for name, to in (("cpu", np.asarray), ("gpu", cp.asarray)):
        ens = predict.gradient_descent_mse_ensemble(_lookup(p, to), to(np.zeros((N, 1))),
                                                    to(p["y"]), diag_reg=1e-3,
                                                    factor_dtype=factor_dtype)
        res = ens(ts, to(np.zeros((M, 1))), None, True)
        inf = ens(None, to(np.zeros((M, 1))), None, True)
        mse = predict.gradient_descent_mse(to(p["ntk"][:N, :N]), to(p["y"]))(
            ts, to(p["y"]), to(p["g0"]), to(p["ntk"][N:, :N]))
        lr = predict.max_learning_rate(to(p["ntk"][:N, :N]))
        if name == "gpu":
            assert isinstance(res.ntk.covariance, cp.ndarray)
            assert isinstance(mse[1], cp.ndarray)
        outs[name] = [res.nngp.mean, res.nngp.covariance, res.ntk.mean, res.ntk.covariance,
                      inf.ntk.covariance, mse[0], mse[1], lr]
    tol = 1e-9 if factor_dtype is None else 1e-4
    for a, b in zip(outs["cpu"], outs["gpu"]):
        b = cp.asnumpy(b) if isinstance(b, cp.ndarray) else b
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * np.abs(a).max())


def test_gpu_refuses_singular_with_eigenvalue():
    p = _problem()
    k = cp.asarray(p["ntk"][:N, :N])
    k[:, -1] = k[:, 0]
    k[-1, :] = k[0, :]
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        predict.gradient_descent_mse(k, cp.asarray(p["y"]))(None, 0.0, cp.asarray(p["g0"]),
                                                           cp.asarray(p["ntk"][N:, :N]))
