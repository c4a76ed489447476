"""Numba-CUDA kernels of the fast dual activations (imported only when a CUDA array, or the
simulator, asks for one: importing this module imports ``numba.cuda``).

One kernel per scalar formula, one thread per entry of the ``canonical3`` operands (see
``_launch``); the scalar formulas are the ``cpu_jit`` functions of the activation modules,
which Numba-CUDA compiles as device functions.
"""
import functools

from .._jit import cpu_jit, cuda_module

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


@cpu_jit
def cuda_entry(m, kshape, ashape, bshape):
    """Indices of flat entry ``m`` of ``k`` (shape ``kshape`` = (P, Q, R)) and of its variances
    in ``a``/``b`` (shapes ``ashape``/``bshape``): ``(i, j, r, ia, ja, ra, ib, jb)``. Takes
    shapes, not arrays, so that the CUDA simulator can call it too."""
    Q, R = kshape[1], kshape[2]
    i = m // (Q * R)
    j = (m // R) % Q
    r = m % R
    ia = i if ashape[0] > 1 else 0
    ja = j if ashape[1] > 1 else 0
    ra = r if ashape[2] > 1 else 0
    ib = i if bshape[0] > 1 else 0
    jb = j if bshape[1] > 1 else 0
    return i, j, r, ia, ja, ra, ib, jb
