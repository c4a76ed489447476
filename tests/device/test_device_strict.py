"""Every public path on (fake) device arrays, without a GPU: no host array mixed into device
arithmetic, and results that stay on the device.

A NumPy-backed stand-in for CuPy: ``DevArray`` (module ``cupy``) refuses arithmetic with plain
NumPy arrays, as CuPy does, and a fake ``cupy`` module computes with NumPy and returns
``DevArray``s. The CUDA kernels (fused block, pool, elementwise duals) are replaced by their
array references run through the fake module, so what is checked is the plumbing around them:
device selection, parameter transfer, host/device boundaries of ``predict``, training,
``empirical`` and ``batch``. What it cannot see: implicit ``numpy.asarray`` of a device array
(a subclass converts silently) and CUDA itself (``test_gpu_sim.py``, ``test_gpu_cupy.py``).
The probe runs in a fresh subprocess (this file as a script) so nothing leaks into others.
"""
import contextlib
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest


class DevArray(np.ndarray):
    """A host array posing as a CuPy array."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        for x in inputs:
            if type(x) is np.ndarray and x.ndim > 0:
                raise TypeError(f"{ufunc.__name__}: a device array mixed with a NumPy array")
        raw = [_unwrap(x) for x in inputs]
        if "out" in kw:
            kw["out"] = tuple(_unwrap(o) for o in kw["out"])
        return _wrap(getattr(ufunc, method)(*raw, **kw))

    def __array_function__(self, func, types_, args, kwargs):
        # CuPy implements __array_function__: numpy.f(cupy arrays) runs cupy.f on the device
        return _wrap(func(*_unwrap(args), **{n: _unwrap(v) for n, v in kwargs.items()}))

    def get(self):
        return np.array(self.view(np.ndarray))

    @property
    def device(self):
        return types.SimpleNamespace(id=0)


DevArray.__module__ = "cupy"


def _unwrap(x):
    if isinstance(x, DevArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return _rebuild(x, [_unwrap(v) for v in x])
    return x


def _wrap(x):
    if isinstance(x, np.ndarray) and not isinstance(x, DevArray):
        return x.view(DevArray)
    if isinstance(x, (list, tuple)):
        return _rebuild(x, [_wrap(v) for v in x])
    return x


def _rebuild(x, items):
    return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)


def _on_device(f):
    def run(*a, **k):
        return _wrap(f(*_unwrap(a), **{n: _unwrap(v) for n, v in k.items()}))
    return run


class _Device(contextlib.nullcontext):
    def __init__(self, i=0):
        super().__init__()
        self.id = i

    def synchronize(self):
        return None


def fake_cupy():
    import scipy.linalg
    cp = types.ModuleType("cupy")
    cp.__getattr__ = lambda n: (_on_device(getattr(np, n)) if callable(getattr(np, n))
                                and not isinstance(getattr(np, n), type) else getattr(np, n))
    cp.ndarray = DevArray
    cp.asnumpy = lambda a: a.get() if isinstance(a, DevArray) else np.asarray(a)
    cp.linalg = types.SimpleNamespace(**{n: _on_device(getattr(np.linalg, n)) for n in
                                         ("eigh", "eigvalsh", "cholesky", "solve", "norm", "inv")})
    cp.linalg.LinAlgError = np.linalg.LinAlgError
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                    Device=_Device, get_current_stream=_Device)
    cpx = types.ModuleType("cupyx")
    cpx.scipy = types.ModuleType("cupyx.scipy")
    cpx.scipy.linalg = types.SimpleNamespace(
        solve_triangular=_on_device(scipy.linalg.solve_triangular),
        cho_solve=_on_device(scipy.linalg.cho_solve))
    return {"cupy": cp, "cupyx": cpx, "cupyx.scipy": cpx.scipy,
            "cupyx.scipy.linalg": cpx.scipy.linalg}


def _install(cp):
    """Point infwide at the fake: device detection, host copies, and the CUDA kernels."""
    import infwide.backend as backend
    from infwide.kernels import _xp
    from infwide.kernels.activations import _launch
    from infwide.kernels.cuda import block, pool, reference as R
    is_gpu, to_numpy = _xp.is_gpu_array, backend.to_numpy
    patched = {"is_gpu_array": lambda x: isinstance(x, DevArray) or is_gpu(x),
               "to_numpy": lambda x: x.get() if isinstance(x, DevArray) else to_numpy(x)}
    for mod in list(sys.modules.values()):
        for name, orig in (("is_gpu_array", is_gpu), ("to_numpy", to_numpy)):
            if getattr(mod, "__name__", "").startswith("infwide") and \
                    getattr(mod, name, None) is orig:
                setattr(mod, name, patched[name])
    choose = _launch.FastDual._choose
    _launch.FastDual._choose = lambda self, k: ("reference" if isinstance(k, DevArray)
                                                else choose(self, k))
    block.conv_block = lambda n, t, c1, c2, co, ac, pad, threads=None: R.conv_block_ref(
        cp, n, t, c1, c2, co, ac, pad)
    pool.avg_pool_full_cuda = lambda m, nb, w, s=None, threads=None: R.avg_pool_full(
        cp, m, nb, w, s)


def _host_leaf(out, path="result"):
    """The path of the first non-scalar host array in ``out``, or None."""
    if isinstance(out, np.ndarray):
        return None if isinstance(out, DevArray) or out.ndim == 0 else path
    if hasattr(out, "__dataclass_fields__"):
        fields = [(f, getattr(out, f)) for f in out.__dataclass_fields__]
    elif isinstance(out, (tuple, list)):
        fields = [(getattr(out, "_fields", range(len(out)))[i], v) for i, v in enumerate(out)]
    elif isinstance(out, dict):
        fields = list(out.items())
    else:
        return None
    for name, v in fields:
        if name in ("t", "steps"):   # training times and step counts: host metadata
            continue
        bad = _host_leaf(v, f"{path}.{name}")
        if bad:
            return bad
    return None


def _cases(cp):
    from infwide import batch, empirical, predict, stax, training
    from infwide.device import params_to_device
    rng = np.random.default_rng(0)
    d = cp.asarray
    fc = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(2))
    cnn = stax.serial(stax.Conv(4, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                      stax.Flatten(), stax.Dense(2))
    myr = stax.serial(stax.Conv(4, (3, 3), padding="SAME"), stax.Relu(),
                      stax.AvgPool((2, 2), (2, 2)), stax.Conv(4, (3, 3), padding="SAME"),
                      stax.Erf(), stax.GlobalAvgPool(), stax.Dense(1))
    x, x2, y = rng.standard_normal((5, 6)), rng.standard_normal((3, 6)), rng.standard_normal((5, 2))
    xi = rng.standard_normal((3, 4, 4, 2))
    _, p = fc.init_fn(0, x.shape)
    _, pc = cnn.init_fn(0, xi.shape)
    pd = params_to_device(p, d(x))
    k, kst = fc.kernel_fn(x, None, "ntk"), fc.kernel_fn(x2, x, "ntk")

    def fwd_bwd(net, params, xx):
        pp = params_to_device(params, d(xx))
        out, cache = net.forward(pp, d(xx))
        return net.backward(pp, cache, cp.ones_like(out))
    return {
        "kernel_fc": lambda: fc.kernel_fn(d(x), d(x2)),
        "kernel_fc_square": lambda: fc.kernel_fn(d(x), None),
        "kernel_cnn_flatten": lambda: cnn.kernel_fn(d(xi), None),
        "kernel_myrtle_plan": lambda: myr.kernel_fn(d(xi), None),
        "apply_fc": lambda: fc.apply_fn(p, d(x)),
        "apply_cnn": lambda: cnn.apply_fn(pc, d(xi)),
        "forward_backward_fc": lambda: fwd_bwd(fc, p, x),
        "forward_backward_cnn": lambda: fwd_bwd(cnn, pc, xi),
        "value_and_grad": lambda: training.value_and_grad(fc, "mse")(pd, d(x), d(y)),
        "train_mse": lambda: training.train_mse(fc, pd, d(x), d(y), np.array([0., 1.]),
                                                learning_rate=0.1),
        "empirical_ntk": lambda: empirical.empirical_kernel_fn(fc.apply_fn)(d(x), d(x2), "ntk",
                                                                             pd),
        "gradient_descent_mse": lambda: predict.gradient_descent_mse(d(k), d(y), diag_reg=1e-3)(
            np.array([1., np.inf]), 0., 0., d(kst)),
        "gp_inference": lambda: predict.gp_inference(d(k), d(y), diag_reg=1e-3)("ntk", d(kst)),
        "ensemble": lambda: predict.gradient_descent_mse_ensemble(
            fc.kernel_fn, d(x), d(y), diag_reg=1e-3)(1.0, d(x2), "ntk", compute_cov=True),
        "gradient_descent_ode": lambda: predict.gradient_descent(
            predict.mse, d(k), d(y), learning_rate=0.5)(1.0, 0., 0., d(kst)),
        "batch": lambda: batch(cnn.kernel_fn, batch_size=2)(d(xi), None),
    }


def _probe():
    mods = fake_cupy()
    sys.modules.update(mods)
    _install(mods["cupy"])
    out = {}
    for name, fn in _cases(mods["cupy"]).items():
        try:
            res = fn()
            bad = _host_leaf(res)
            out[name] = "ok" if bad is None else f"{bad} came back as a NumPy array"
        except Exception as e:   # reported per case by the tests
            out[name] = f"{type(e).__name__}: {str(e)[:300]}"
    return out


CASES = ["kernel_fc", "kernel_fc_square", "kernel_cnn_flatten", "kernel_myrtle_plan", "apply_fc",
         "apply_cnn", "forward_backward_fc", "forward_backward_cnn", "value_and_grad",
         "train_mse", "empirical_ntk", "gradient_descent_mse", "gp_inference", "ensemble",
         "gradient_descent_ode", "batch"]


@pytest.fixture(scope="module")
def probe():
    r = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_public_path_stays_on_device(probe, case):
    assert probe[case] == "ok", probe[case]


if __name__ == "__main__":
    print(json.dumps(_probe()))
