"""Dispatch of a dual activation to its reference, Numba CPU or Numba-CUDA implementation.

The fast loops see three 3-D arrays ``(P, Q, R)``: ``k12`` C-contiguous, and the variances
``k11``/``k22`` with extents 1 (broadcast) or full on the first two axes and 1 or ``R`` on the
last. ``canonical3`` maps every layout ``Elementwise`` produces onto that form without copying
a pair-sized array:

- fully connected ``(N1, N2)`` with ``(N1, 1)``/``(1, N2)`` variances -> ``(N1, 1, N2)``;
- diagonal spatial ``(N1, N2, S...)`` -> ``(N1, N2, prod S)``;
- full spatial ``(N1, N2, H, H', ...)``: the per-image variances are broadcast over the primed
  axes into small ``(N, 1, R)`` copies;
- per-input covariances (``cov1``/``cov2``) likewise, with ``P = N``.

Since every dual is symmetric, ``dual(k11, k12, k22) == dual(k22, k12, k11)``, the operand that
is constant along the last axis is always passed first, so the loops need only two variants.
"""
import math

import numpy as np

from .._jit import cpu_jit, cuda_module, cuda_simulated
from .._xp import get_xp

__all__ = ["FAST_MIN_SIZE", "FastDual", "canonical3"]

FAST_MIN_SIZE = 1 << 13   # below this many entries the reference (a few NumPy passes) wins
_THREADS = 256


def _operand3(xp, x, shape):
    """``x`` (broadcastable to ``shape``) as ``(e0, e1, 1 or R)``, C-contiguous."""
    n = len(shape)
    x = x.reshape((1,) * (n - x.ndim) + tuple(x.shape))
    head = (x.shape[0], x.shape[1] if n >= 2 else 1)
    tail = tuple(x.shape[2:])
    if all(e == 1 for e in tail):
        return xp.ascontiguousarray(x.reshape(head + (1,)))
    full = xp.broadcast_to(x, head + tuple(shape[2:]))
    return xp.ascontiguousarray(full).reshape(head + (-1,))


def canonical3(k11, k12, k22):
    """``(a, k, b)``: the operands as 3-D arrays for the fast loops (see the module docstring).

    ``k`` is a C-contiguous view (or copy) of ``k12`` reshaped to ``(P, Q, R)``; ``a`` has an
    extent of 1 or ``R`` on its last axis, ``b`` an extent of ``R``.
    """
    xp = get_xp(k12)
    shape = tuple(k12.shape)
    if np.broadcast_shapes(k11.shape, k12.shape, k22.shape) != shape or len(shape) == 0:
        return None
    dt = k12.dtype
    k11, k22 = k11.astype(dt, copy=False), k22.astype(dt, copy=False)
    P = shape[0]
    Q = shape[1] if len(shape) >= 2 else 1
    R = math.prod(shape[2:])
    a, b = _operand3(xp, k11, shape), _operand3(xp, k22, shape)
    k = xp.ascontiguousarray(k12).reshape(P, Q, R)
    if R == 1 and Q > 1:            # move the long axis last, where the loops vectorise
        k = k.reshape(P, 1, Q)
        a = a.reshape(a.shape[0], 1, a.shape[1])
        b = b.reshape(b.shape[0], 1, b.shape[1])
        R = Q
    if a.shape[2] == R and b.shape[2] == 1 and R > 1:
        a, b = b, a
    if b.shape[2] == 1 and R > 1:
        b = xp.ascontiguousarray(xp.broadcast_to(b, b.shape[:2] + (R,)))
    return a, k, b


class FastDual:
    """One dual activation: a NumPy/CuPy reference and optional fast implementations.

    Parameters
    ----------
    reference : ``(k11, k12, k22, want_dot, prm) -> (nngp, dot or None)``, array code via xp.
    cpu : Numba routine ``(a, k, b, nngp, dot, prm)`` over ``canonical3`` operands, or None.
        Each dual keeps its own copy of this loop with its scalar inlined: one generic loop
        taking the scalar as a first-class (dispatcher) argument is not found in Numba's
        on-disk cache by later processes (measured: a new cache entry and ~1.5 s of
        compilation in every process).
    scalar : the ``cpu_jit`` scalar formula ``(k11, k12, k22, prm, T) -> (nngp, dot)`` that the
        Numba-CUDA kernel (``_cuda.dual_kernel``, built on first use) applies, or None.
    """

    def __init__(self, reference, cpu=None, scalar=None):
        self.reference, self.cpu, self.scalar = reference, cpu, scalar

    def __call__(self, k11, k12, k22, want_dot, prm, backend=None):
        """``backend``: None (automatic), ``'reference'``, ``'cpu'`` or ``'cuda'``."""
        if backend is None:
            backend = self._choose(k12)
        if backend == "reference":
            return self.reference(k11, k12, k22, want_dot, prm)
        if {"cpu": self.cpu, "cuda": self.scalar}.get(backend, True) is None:
            raise ValueError(f"FastDual: this dual has no {backend!r} implementation; "
                             "use backend=None or 'reference'.")
        ops = canonical3(k11, k12, k22)
        if ops is None:
            return self.reference(k11, k12, k22, want_dot, prm)
        a, k, b = ops
        xp = get_xp(k12)
        nngp, dot = xp.empty_like(k), xp.empty_like(k)
        prm = tuple(k.dtype.type(p) for p in prm)   # the kernel's precision: no float64 in float32
        if backend == "cpu":
            self.cpu(a, k, b, nngp, dot, prm)
        elif backend == "cuda":
            nngp, dot = _run_cuda(self.scalar, xp, a, k, b, nngp, dot, prm)
        else:
            raise ValueError(f"FastDual: unknown backend {backend!r}; expected None, "
                             "'reference', 'cpu' or 'cuda'.")
        return nngp.reshape(k12.shape), (dot.reshape(k12.shape) if want_dot else None)

    def _choose(self, k12):
        if k12.dtype not in (np.float32, np.float64):
            return "reference"
        if get_xp(k12) is np:
            return "cpu" if self.cpu is not None and k12.size >= FAST_MIN_SIZE else "reference"
        return "cuda" if self.scalar is not None else "reference"


def _run_cuda(scalar, xp, a, k, b, nngp, dot, prm):
    """Launch the CUDA kernel of ``scalar``; host (NumPy) operands, as in the CUDA simulator,
    are staged through device arrays."""
    from ._cuda import dual_kernel   # imports numba.cuda: only here
    kernel = dual_kernel(scalar)
    threads = 32 if cuda_simulated() else _THREADS   # the simulator runs Python threads
    blocks = max(1, -(-k.size // threads))
    if xp is not np:
        kernel[blocks, threads](a, k, b, nngp, dot, prm)
        return nngp, dot
    cuda = cuda_module()
    dev = [cuda.to_device(x) for x in (a, k, b, nngp, dot)]
    kernel[blocks, threads](*dev, prm)
    return dev[3].copy_to_host(), dev[4].copy_to_host()
