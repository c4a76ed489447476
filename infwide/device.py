"""Device policy: the inputs decide where the work runs and what kind of array comes back.

- NumPy arrays (and lists, scalars) compute on the CPU and come back as NumPy arrays.
- CuPy arrays compute on their GPU and come back as CuPy arrays.
- A torch CUDA tensor is read without a copy (``__cuda_array_interface__`` or DLPack) and the
  results come back as torch tensors on the same GPU (``torch.from_dlpack``, no copy).
- A Numba device array comes back as a Numba device array (``numba.cuda.as_cuda_array``).
- Any other object exposing ``__cuda_array_interface__`` or a CUDA DLPack device is read
  without a copy and the results come back as **CuPy arrays** (there is no general way to
  build an arbitrary foreign array type; CuPy arrays export both protocols).

Nothing here imports CuPy, torch or ``numba.cuda`` until such an array is seen; a GPU array
given while the GPU stack is missing raises an ``ImportError`` that names the extra to install.
Numba CPU fast paths must only be given host arrays: dispatchers ask ``cpu_fast_path_ok``.
"""
import importlib
import os

import numpy as np

from .backend import GPU_EXTRA_HINT, get_xp, is_gpu_array
from .kernel import Kernel

__all__ = ["array_kind", "result_kind", "on_gpu", "cpu_fast_path_ok", "require",
           "restore", "params_to_device", "available_memory"]

_KINDS_BY_MODULE = {"cupy": "cupy", "torch": "torch", "numba": "numba"}


def array_kind(x):
    """``'numpy'``, ``'cupy'``, ``'torch'``, ``'numba'`` or ``'cuda'`` (another CUDA array)."""
    if not is_gpu_array(x):
        return "numpy"
    return _KINDS_BY_MODULE.get(type(x).__module__.split(".")[0], "cuda")


def result_kind(*arrays):
    """The kind of the first GPU array among ``arrays`` (``'numpy'`` when there is none)."""
    for a in arrays:
        if isinstance(a, (list, tuple)):
            kind = result_kind(*a)
        else:
            kind = array_kind(a)
        if kind != "numpy":
            return kind
    return "numpy"


def on_gpu(*arrays):
    """True when any argument lives on a GPU (so the CUDA kernels, not Numba CPU, must run)."""
    return result_kind(*arrays) != "numpy"


def cpu_fast_path_ok(*arrays):
    """True when every non-None argument is a host (NumPy) array: Numba CPU kernels allowed."""
    return all(a is None or (isinstance(a, (np.ndarray, np.generic)) and not is_gpu_array(a))
               for a in arrays)


def require(module):
    """Import ``module`` (``'cupy'``, ``'numba.cuda'`` or ``'torch'``) or raise an ImportError
    naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"a GPU array was given but `{module}` cannot be imported: "
                          f"{GPU_EXTRA_HINT}.") from e


def _convert(a, kind):
    if kind == "torch":
        return require("torch").from_dlpack(a)
    if kind == "numba":
        return require("numba.cuda").as_cuda_array(a)
    return a


def restore(out, kind):
    """Give ``out`` (an array, a ``Kernel``, or a tuple/namedtuple/list/dict of them) back
    as arrays of ``kind``; NumPy, CuPy and foreign CUDA kinds pass through unchanged."""
    if kind in ("numpy", "cupy", "cuda") or out is None:
        return out
    if isinstance(out, Kernel):
        return out.map_covariances(lambda m, nb: _convert(m, kind))
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*[restore(v, kind) for v in out])
    if isinstance(out, (tuple, list)):
        return type(out)(restore(v, kind) for v in out)
    if isinstance(out, dict):
        return {k: restore(v, kind) for k, v in out.items()}
    if hasattr(out, "shape") and not isinstance(out, np.generic):
        return _convert(out, kind)
    return out


def params_to_device(params, x):
    """NumPy parameters follow a GPU input onto its device (a no-op on the CPU, or when they
    are already device arrays); nested tuples/lists/dicts keep their structure."""
    if not on_gpu(x[0] if isinstance(x, (list, tuple)) and x else x):
        return params
    xp = get_xp(x[0] if isinstance(x, (list, tuple)) else x)
    return _tree_to(xp, params)


def _tree_to(xp, p):
    if isinstance(p, np.ndarray):
        return xp.asarray(p)
    if isinstance(p, tuple) and hasattr(p, "_fields"):
        return type(p)(*[_tree_to(xp, v) for v in p])
    if isinstance(p, (tuple, list)):
        return type(p)(_tree_to(xp, v) for v in p)
    if isinstance(p, dict):
        return {k: _tree_to(xp, v) for k, v in p.items()}
    return p


def _host_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 2 ** 31


def _gpu_available(devices):
    import cupy
    free = []
    for d in devices:
        with cupy.cuda.Device(d):
            pool = cupy.get_default_memory_pool()
            free.append(cupy.cuda.runtime.memGetInfo()[0] + pool.free_bytes())
    return min(free)


def available_memory(gpu_devices=None):
    """Free memory of the device in use: host RAM (MemAvailable), or the least free of the
    given GPUs (``cudaMemGetInfo`` plus what CuPy's pool holds unused)."""
    if gpu_devices:
        return _gpu_available(gpu_devices)
    return _host_available()
