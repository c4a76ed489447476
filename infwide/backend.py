"""Array namespace and device policy.

The inputs decide the device: NumPy arrays compute on the CPU, CuPy arrays (or any
CUDA array exposing ``__cuda_array_interface__`` / DLPack) on their GPU. Nothing here
imports CuPy unless such an array is actually seen, so ``import infwide`` never
initialises CUDA.
"""
import numpy as np

from .kernels import get_xp, is_gpu_array

__all__ = ["get_xp", "is_gpu_array", "as_array", "result_dtype", "to_numpy",
           "check_finite", "GPU_EXTRA_HINT"]

GPU_EXTRA_HINT = ('install a GPU stack with `pip install "infwide[cuda12]"` '
                  '(or "infwide[cuda13]" for CUDA 13 drivers)')


def as_array(x, name="x"):
    """Turn ``x`` into a NumPy or CuPy array on its own device (no copy when possible)."""
    if isinstance(x, np.ndarray):
        return x
    if is_gpu_array(x):
        cp = get_xp(x)
        if type(x).__module__.split(".")[0] == "cupy":
            return x
        if hasattr(x, "__cuda_array_interface__"):
            return cp.asarray(x)
        return cp.from_dlpack(x)
    try:
        return np.asarray(x)
    except Exception as e:
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}") from e


def result_dtype(*arrays):
    """float32 stays float32, float64 stays float64, anything else becomes float64."""
    dts = [a.dtype for a in arrays if a is not None]
    if dts and all(d == np.float32 for d in dts):
        return np.dtype(np.float32)
    if dts and all(d in (np.float32, np.float16) for d in dts):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def to_numpy(x):
    """A NumPy copy of a NumPy or CuPy array (for tests and reporting)."""
    if x is None or isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def check_finite(x, name, where):
    """Raise a ValueError if ``x`` holds NaN or Inf, naming the argument and the caller."""
    xp = get_xp(x)
    if x.dtype.kind not in "fc" or x.size == 0:
        return
    # min and max propagate NaN and show +-Inf, without a boolean temporary the size of x
    # (complex: they order by real part only, so take the full test).
    quick = x.dtype.kind == "f" and bool(xp.isfinite(xp.min(x))) and \
        bool(xp.isfinite(xp.max(x)))
    if not quick and not bool(xp.isfinite(x).all()):
        n_bad = int((~xp.isfinite(x)).sum())
        raise ValueError(f"{where}: `{name}` contains {n_bad} NaN or Inf value(s); "
                         "expected finite inputs. Remove or impute them first.")
