"""Numba-CUDA kernels of the fast dual activations (imported only when a CUDA array, or the
simulator, asks for one: importing this module imports ``numba.cuda``).

One kernel per scalar formula, one thread per entry of the ``canonical3`` operands (see
``_launch``); the scalar formulas are the ``cpu_jit`` functions of the activation modules,
which Numba-CUDA compiles as device functions.
"""
import functools

from .._jit import cuda_module
from ._launch import cuda_entry

cuda = cuda_module()

__all__ = ["dual_kernel"]


@functools.lru_cache(maxsize=None)
def dual_kernel(scalar):
    """The kernel ``(a, k, b, nngp, dot, prm)`` applying ``scalar(k11, k12, k22, prm, T)``."""

    @cuda.jit
    def kernel(a, k, b, nngp, dot, prm):
        m = cuda.grid(1)
        if m < k.size:
            i, j, r, ia, ja, ra, ib, jb = cuda_entry(m, k.shape, a.shape, b.shape)
            nngp[i, j, r], dot[i, j, r] = scalar(a[ia, ja, ra], k[i, j, r], b[ib, jb, r],
                                                 prm, k.dtype.type)
    return kernel
