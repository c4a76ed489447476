"""The CUDA kernels compile to PTX with the real numba-cuda (type inference and NVVM, no GPU
needed), and the float32 kernels contain no float64 arithmetic (no silent promotion).

Skips unless numba-cuda and its NVVM are installed (``pip install "infwide[cuda12]"``).
"""
import os
import subprocess
import sys

import pytest

CHECK = r'''
import types, numba.cuda.dispatcher as d
from numba import cuda, types as T
d.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
from infwide.kernels.cuda import block, pool
for name in ("float64", "float32"):
    ft = getattr(T, name)
    a6, a5, a4, a2 = ft[:, :, :, :, :, :], ft[:, :, :, :, :], ft[:, :, :, :], ft[:, :]
    sigs = [(block._block_kernel(name).py_func,
             (a6, a6, a6, a6, a4, a4) + (T.int64[:],) * 4 + (a2, a2, T.int64)
             + (T.boolean,) * 3),
            (pool._pool_kernel.py_func, (a5, a5) + (T.int64,) * 4 + (ft,))]
    for fn, sig in sigs:
        ptx, _ = cuda.compile_ptx(fn, sig, cc=(9, 0))
        print(name, fn.__name__, ptx.count(".f64"), ptx.count(".f32"), ".shared" in ptx)
'''


def test_kernels_compile_to_ptx_and_float32_stays_float32():
    pytest.importorskip("numba_cuda")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                       timeout=300, env=env)
    if r.returncode != 0 and "NVVM" in r.stderr and "not found" in r.stderr.lower():
        pytest.skip("numba-cuda without NVVM")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 4
    for dtype, fn, n64, n32, shared in rows:
        if dtype == "float32":
            assert n64 == "0", (fn, n64)
        if fn == "kernel":
            assert shared == "True"
