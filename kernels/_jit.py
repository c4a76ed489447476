"""One project-wide JIT policy, for the CPU and for CUDA.

CPU: ``cache=True`` (compiled once per machine), ``error_model='numpy'`` (division by zero
gives inf/nan like NumPy instead of raising inside a prange loop), and never ``fastmath``:
arc-cosines near +-1 and NaN handling break under it.

CUDA: ``numba.cuda`` is imported only when a CUDA kernel is first needed, so importing infwide
never initialises CUDA. Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run in Numba's CUDA
simulator on the CPU (tests use tiny shapes there).
"""
import functools
import os

import numba

__all__ = ["cpu_jit", "cpu_pjit", "cuda_module", "cuda_simulated"]

cpu_jit = functools.partial(numba.njit, cache=True, error_model="numpy", fastmath=False,
                            nogil=True)
cpu_pjit = functools.partial(numba.njit, cache=True, error_model="numpy", fastmath=False,
                             nogil=True, parallel=True)


def cuda_simulated():
    """True when Numba's CUDA simulator is enabled (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


@functools.lru_cache(maxsize=None)
def cuda_module():
    """``numba.cuda``, imported on first use; a clear error when the CUDA target is missing."""
    try:
        from numba import cuda
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError('Numba-CUDA is not installed: install a GPU stack with '
                          '`pip install "infwide[cuda12]"` (or "infwide[cuda13]")') from e
    return cuda
