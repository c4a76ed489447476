"""The machine the numbers come from: CPU model, cores, memory, and its measured ceilings.

Ceilings, measured at the start of a run (all cores):
- matmul GFLOP/s: the best of a few ``numpy.matmul`` of two 2048 x 2048 matrices
  (2 n^3 flops), per dtype: what BLAS reaches on this machine, the reference for
  "fraction of peak";
- memory bandwidth: a parallel STREAM-style triad ``a = b + s c`` over three 128 MiB float64
  arrays (24 bytes moved per element), best of a few.
"""
import os
import platform
import time

import numpy as np

__all__ = ["describe", "measure_peaks"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def _flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return [x for x in ("avx2", "fma", "avx512f") if x in fl]
    except OSError:
        pass
    return []


def describe():
    """A dict describing the machine (no measurement)."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _mem_gb(),
            "simd": _flags(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


def _matmul_gflops(dtype, n=2048, repeats=3):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def _triad_gbs(n=2 ** 24, repeats=4):
    import numba

    @numba.njit(parallel=True, cache=False)
    def triad(a, b, c, s):
        for i in numba.prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    a, b, c = np.zeros(n), np.ones(n), np.ones(n)
    triad(a, b, c, 3.0)
    best = min(_timed(lambda: triad(a, b, c, 3.0)) for _ in range(repeats))
    return 3 * 8 * n / best / 1e9


def measure_peaks():
    """Measured ceilings: matmul GFLOP/s per dtype and triad bandwidth (GB/s)."""
    return {"matmul_gflops": {"float32": round(_matmul_gflops(np.float32), 1),
                              "float64": round(_matmul_gflops(np.float64), 1)},
            "triad_gbs": round(_triad_gbs(), 1)}
