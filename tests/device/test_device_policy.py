"""The device policy on a CPU-only machine: import hygiene, the ImportError that names the
extra, and the plumbing of foreign CUDA arrays (zero-copy in, the input's kind out), checked
with fake ``cupy``/``torch`` modules backed by NumPy."""
import ctypes
import subprocess
import sys
import types

import numpy as np
import pytest

from infwide import device, stax
from infwide.kernels import _jit


def _net():
    return stax.serial(stax.Dense(16, W_std=1.5, b_std=0.2), stax.Relu(), stax.Dense(3))


def test_import_never_loads_cupy_or_numba_cuda():
    code = ("import infwide, sys, numpy as np\n"
            "bad = lambda: [m for m in ('cupy', 'numba.cuda', 'torch') if m in sys.modules]\n"
            "assert not bad(), bad()\n"
            "from infwide import stax\n"
            "net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))\n"
            "x = np.random.default_rng(0).standard_normal((3, 5))\n"
            "k = net.kernel_fn(x, None)\n"
            "_, p = net.init_fn(0, x.shape); net.apply_fn(p, x)\n"
            "assert not bad(), bad()\n"
            "print('clean')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "clean" in r.stdout, r.stderr


class FakeCudaArray:
    """Host memory dressed as a CUDA array: only ``__cuda_array_interface__`` (version 3)."""

    def __init__(self, a):
        self._a = np.ascontiguousarray(a)

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "data": (a.ctypes.data, False),
                "strides": None, "version": 3}


def _from_interface(obj):
    """Zero-copy view of the memory an interface points at (what CuPy does on a GPU)."""
    it = obj.__cuda_array_interface__
    dt = np.dtype(it["typestr"])
    n = int(np.prod(it["shape"])) * dt.itemsize
    buf = (ctypes.c_byte * n).from_address(it["data"][0])
    return np.frombuffer(buf, dtype=dt).reshape(it["shape"])


def _fake_cupy():
    mod = types.ModuleType("cupy")
    mod.__getattr__ = lambda name: getattr(np, name)
    mod.calls = []

    def asarray(x, dtype=None):
        mod.calls.append(type(x).__name__)
        if hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray):
            x = _from_interface(x)
        return np.asarray(x, dtype=dtype)

    mod.asarray = asarray
    mod.from_dlpack = np.from_dlpack
    return mod


def _fake_torch():
    mod = types.ModuleType("torch")
    cls = type("Tensor", (FakeCudaArray,), {"__module__": "torch"})
    mod.Tensor = cls
    mod.from_dlpack = lambda a: cls(np.from_dlpack(a))
    return mod


def test_gpu_array_without_cupy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)   # "import cupy" now raises ImportError
    x = FakeCudaArray(np.ones((3, 4)))
    net = _net()
    with pytest.raises(ImportError, match=r"infwide\[cuda12\]"):
        net.kernel_fn(x, None)
    _, params = net.init_fn(0, (3, 4))
    with pytest.raises(ImportError, match=r"infwide\[cuda12\]"):
        net.apply_fn(params, x)


def test_missing_numba_cuda_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    _jit.cuda_module.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"infwide\[cuda12\]"):
            _jit.cuda_module()
        with pytest.raises(ImportError, match=r"infwide\[cuda12\]"):
            device.require("numba.cuda")
    finally:
        _jit.cuda_module.cache_clear()


def test_kinds_and_fast_path_guard():
    a = np.ones(3)
    assert device.array_kind(a) == "numpy" and not device.on_gpu(a, None)
    f = FakeCudaArray(a)
    assert device.array_kind(f) == "cuda" and device.on_gpu(a, f)
    assert device.array_kind(_fake_torch().Tensor(a)) == "torch"
    assert device.result_kind([a, f]) == "cuda"
    assert device.cpu_fast_path_ok(a, None) and not device.cpu_fast_path_ok(a, f)


def test_foreign_cuda_array_zero_copy_and_cupy_results(monkeypatch):
    cp = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    f1 = FakeCudaArray(x1)
    assert np.shares_memory(_from_interface(f1), f1._a)           # the read is a view
    net = _net()
    ref = net.kernel_fn(x1, x2)
    got = net.kernel_fn(f1, FakeCudaArray(x2))
    assert "FakeCudaArray" in cp.calls
    assert isinstance(got.nngp, np.ndarray)      # CuPy's arrays are NumPy's in this fake
    np.testing.assert_allclose(got.nngp, ref.nngp, rtol=1e-14)
    np.testing.assert_allclose(got.ntk, ref.ntk, rtol=1e-14)


def test_torch_in_torch_out(monkeypatch):
    cp, torch = _fake_cupy(), _fake_torch()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "torch", torch)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    net = _net()
    ref = net.kernel_fn(x, None, ("nngp", "ntk"))
    got = net.kernel_fn(torch.Tensor(x), None, ("nngp", "ntk"))
    assert got._fields == ("nngp", "ntk")
    assert all(type(v).__module__ == "torch" for v in got)
    np.testing.assert_allclose(got.nngp._a, ref.nngp, rtol=1e-14)
    k = net.kernel_fn(torch.Tensor(x), None)
    assert type(k.cov1).__module__ == "torch" and k.cov2 is None
    _, params = net.init_fn(0, x.shape)
    y = net.apply_fn(params, torch.Tensor(x))
    assert type(y).__module__ == "torch"
    np.testing.assert_allclose(y._a, net.apply_fn(params, x), rtol=1e-14)


def test_params_follow_a_gpu_input(monkeypatch):
    cp = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    p = ((np.ones((2, 2)), None), (), {"w": [np.zeros(3)]})
    assert device.params_to_device(p, np.ones(2)) is p
    moved = device.params_to_device(p, FakeCudaArray(np.ones(2)))
    assert moved[0][1] is None and moved[1] == () and moved[2]["w"][0].shape == (3,)
    assert cp.calls.count("ndarray") == 2
