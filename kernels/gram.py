"""Gram products ``x1 x2^T`` of raw (N, d) inputs, computed on Numba's own threads.

Why not plain ``x1 @ x1.T``: OpenBLAS's worker threads busy-wait (``sched_yield``) for about
2^28 cycles after each call, and Numba's OpenMP workers spin after each parallel region. When a
Gram product is followed by a parallel Numba pass (the fused FC chain) and the calls repeat,
the two pools fight for the same cores: on 2 cores fc3's 2000 x 2000 kernel took 52 ms on one
thread and 54 ms on two (bench/NOTES.md, step 13).

So for large products :func:`gram` splits the rows into one band per Numba thread and each
thread calls single-threaded BLAS (SciPy's ``cython_blas``, passed to the jitted loop as
first-class functions, so it still caches) on its band; ``threadpoolctl`` (optional) holds BLAS
at one thread meanwhile. One pool of threads does everything and no thread spins against
another. For ``x2 is None`` each band computes the upper triangle of its diagonal block (syrk)
and the block right of it (gemm); band edges ``r_t = N (1 - sqrt(1 - t / T))`` give each of the
T bands 1 / T of the triangle. Without threadpoolctl, for small products, or on one thread, it
is ``x1 @ x2.T``. Either way entries below the diagonal are unspecified when ``x2 is None``:
callers read the upper triangle and the diagonal only.

Row-major (N, d) arrays are column-major (d, N) ones to Fortran BLAS, so the row-major block
``out[r0:r1, c0:] = x1[r0:r1] y[c0:]^T`` is the column-major ``C = B^T A`` with
``B = y[c0:]^T`` and ``A = x1[r0:r1]^T``: ``gemm('T', 'N', n - c0, r1 - r0, d, ...)``, and a
row-major upper triangle is a column-major lower one (``syrk('L', 'T', ...)``).
"""
import ctypes
import threading

import numpy as np
import numba

from ._alloc import touched_empty
from ._jit import cpu_jit, cpu_pjit

__all__ = ["gram", "band_edges", "SPLIT_MIN"]

#: Multiply-adds (N1 N2 d) below which the product stays one BLAS call.
SPLIT_MIN = 1 << 26

_LOCK = threading.Lock()
_STATE = {"controller": None, "blas": {}}


def _controller():
    """A cached ``threadpoolctl.ThreadpoolController`` (False when threadpoolctl is missing)."""
    if _STATE["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            _STATE["controller"] = ThreadpoolController()
        except ImportError:
            _STATE["controller"] = False
    return _STATE["controller"]


def _blas(prefix):
    """SciPy's Fortran ``?syrk`` and ``?gemm`` (``prefix`` 's' or 'd') as ctypes functions."""
    if prefix not in _STATE["blas"]:
        from numba.extending import get_cython_function_address
        vp = ctypes.c_void_p
        syrk = ctypes.CFUNCTYPE(None, *[vp] * 10)(
            get_cython_function_address("scipy.linalg.cython_blas", prefix + "syrk"))
        gemm = ctypes.CFUNCTYPE(None, *[vp] * 13)(
            get_cython_function_address("scipy.linalg.cython_blas", prefix + "gemm"))
        _STATE["blas"][prefix] = (syrk, gemm)
    return _STATE["blas"][prefix]


def band_edges(n, threads, symmetric):
    """Row edges of ``threads`` bands with equal work (upper triangle when ``symmetric``)."""
    t = np.arange(threads + 1) / threads
    edges = n * (1.0 - np.sqrt(1.0 - t)) if symmetric else n * t
    edges = np.round(edges).astype(np.int64)
    edges[0], edges[-1] = 0, n
    return np.unique(edges)


def gram(x1, x2=None, threads=None):
    """``x1 @ x2.T`` for C-contiguous float32/float64 (N, d) arrays of one dtype (``x2`` None:
    ``x1 @ x1.T``, of which only the upper triangle and the diagonal are specified)."""
    y = x1 if x2 is None else x2
    n1, n2, d = x1.shape[0], y.shape[0], x1.shape[1]
    threads = numba.get_num_threads() if threads is None else int(threads)
    ctl = _controller()
    if threads < 2 or not ctl or n1 * n2 * d < SPLIT_MIN or min(n1, n2) < 4 * threads or \
            x1.dtype != y.dtype or x1.dtype not in (np.float32, np.float64) or \
            not (x1.flags.c_contiguous and y.flags.c_contiguous):
        return x1 @ y.T
    syrk, gemm = _blas("s" if x1.dtype == np.float32 else "d")
    out = touched_empty((n1, n2), x1.dtype)
    edges = band_edges(n1, threads, x2 is None)
    with _LOCK, ctl.limit(limits=1, user_api="blas"):
        _bands(syrk, gemm, x1, y, out, edges, x2 is None)
    return out


@cpu_pjit
def _bands(syrk, gemm, x, y, out, edges, sym):
    for t in numba.prange(edges.shape[0] - 1):
        _band(syrk, gemm, x, y, out, edges[t], edges[t + 1], sym)


@cpu_jit
def _band(syrk, gemm, x, y, out, r0, r1, sym):
    """Rows r0:r1 of ``out``: from column r0 on (syrk block, then gemm) when ``sym``, else
    all columns (gemm)."""
    n, d = y.shape[0], x.shape[1]
    ints = np.empty(4, np.int32)          # m, n, k and leading dimensions, by reference
    ints[0], ints[1], ints[2] = r1 - r0, d, n
    chars = np.empty(3, np.uint8)
    chars[0], chars[1], chars[2] = ord("L"), ord("T"), ord("N")
    scal = np.empty(2, x.dtype)
    scal[0], scal[1] = 1.0, 0.0
    c0 = r0 if sym else 0
    if sym:
        syrk(chars[0:1].ctypes, chars[1:2].ctypes, ints[0:1].ctypes, ints[1:2].ctypes,
             scal[0:1].ctypes, x[r0:].ctypes, ints[1:2].ctypes, scal[1:2].ctypes,
             out[r0:, r0:].ctypes, ints[2:3].ctypes)
        c0 = r1
    if c0 < n:
        ints[3] = n - c0
        gemm(chars[1:2].ctypes, chars[2:3].ctypes, ints[3:4].ctypes, ints[0:1].ctypes,
             ints[1:2].ctypes, scal[0:1].ctypes, y[c0:].ctypes, ints[1:2].ctypes,
             x[r0:].ctypes, ints[1:2].ctypes, scal[1:2].ctypes, out[r0:, c0:].ctypes,
             ints[2:3].ctypes)
