"""The array namespace of the engine: ``numpy`` for host arrays, ``cupy`` for device arrays.

CuPy is imported only when a device array is actually seen.
"""
import numpy as np

__all__ = ["get_xp", "is_gpu_array"]


def is_gpu_array(x):
    """True for CuPy arrays and any object exposing ``__cuda_array_interface__`` or a CUDA DLPack device."""
    if x is None or isinstance(x, (np.ndarray, np.generic, float, int)):
        return False
    if type(x).__module__.split(".")[0] == "cupy":
        return True
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None:
        try:
            return int(dev()[0]) in (2, 3, 13)  # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
        except Exception:  # pragma: no cover - exotic array types
            return False
    return False


def get_xp(*arrays):
    """``numpy`` or ``cupy``, whichever the (non-None) arguments live in."""
    for a in arrays:
        if is_gpu_array(a):
            try:
                import cupy
            except ImportError as e:  # pragma: no cover - depends on the machine
                raise ImportError('a GPU array was given but CuPy is not installed: install a GPU '
                                  'stack with `pip install "infwide[cuda12]"` (or "infwide[cuda13]")'
                                  ) from e
            return cupy
    return np
