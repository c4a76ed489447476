"""One project-wide JIT policy, for the CPU and for CUDA.

CPU: ``cache=True`` (compiled once per machine, and cached outside the installed package:
see ``_cache``), ``error_model='numpy'`` (division by zero gives inf/nan like NumPy instead of
raising inside a prange loop), and never ``fastmath``: arc-cosines near +-1 and NaN handling
break under it.

Threads: the CPU routines release the GIL (``nogil``), so kernel functions may be called from
several Python threads at once. Numba's 'tbb' and 'omp' threading layers are thread-safe; its
'workqueue' layer (the fallback when neither TBB nor OpenMP is available, or when
NUMBA_THREADING_LAYER=workqueue) aborts the whole process when two threads enter parallel
regions at once. So every ``cpu_pjit`` routine is called through ``OneAtATime``: under a
process-wide lock while the layer is 'workqueue' (or not chosen yet, before the first parallel
launch), with no lock at all once Numba reports 'tbb' or 'omp' (tests/kernels/test_concurrency.py).

CUDA: ``numba.cuda`` is imported only when a CUDA kernel is first needed, so importing infwide
never initialises CUDA. Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run in Numba's CUDA
simulator on the CPU (tests use tiny shapes there).
"""
import functools
import os
import threading

import numba

from ._cache import outside_the_package

__all__ = ["cpu_jit", "cpu_pjit", "cuda_module", "cuda_simulated", "OneAtATime"]


def cpu_jit(fn=None, **options):
    """``numba.njit`` with the project's policy, cached outside the package (``_cache``)."""
    if fn is None:
        return functools.partial(cpu_jit, **options)
    with outside_the_package():
        return numba.njit(fn, cache=True, error_model="numpy", fastmath=False, nogil=True,
                          **options)


_PARALLEL_LOCK = threading.Lock()
_THREADSAFE_LAYERS = ("tbb", "omp")


class OneAtATime:
    """A ``parallel=True`` dispatcher that never enters Numba's 'workqueue' layer from two
    threads at once (see the module docstring); attributes (``py_func``...) are the
    dispatcher's."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        functools.update_wrapper(self, dispatcher.py_func)

    def __call__(self, *args, **kwargs):
        try:
            layer = numba.threading_layer()
        except ValueError:   # no parallel launch yet: the layer is not chosen
            layer = None
        if layer in _THREADSAFE_LAYERS:
            return self.dispatcher(*args, **kwargs)
        with _PARALLEL_LOCK:
            return self.dispatcher(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)


def cpu_pjit(fn=None, **options):
    """``numba.njit(parallel=True)`` with the project's policy, called through ``OneAtATime``."""
    if fn is None:
        return functools.partial(cpu_pjit, **options)
    return OneAtATime(cpu_jit(fn, parallel=True, **options))


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
