"""Deterministic benchmark inputs, written once by the parent process and read by every worker
(so infwide and Neural Tangents see the same numbers)."""
import argparse
import os

import numpy as np

__all__ = ["make_inputs", "load_inputs"]


def make_inputs(workload, size, n, n_test, shape, folder, dtypes=("float32", "float64"),
                seed=0):
    """Standard-normal inputs saved as float64 .npy files; for the "predict" workload the
    kernels themselves, per dtype, made by ``bench/predict_bench.py`` (its ``make_kernels``:
    only the prediction is timed, on the same stored kernels for both libraries)."""
    if workload.kind == "predict":
        from . import predict_bench
        files = {}
        for dt in dtypes:
            sub = os.path.join(folder, f"kernels-{dt}")
            os.makedirs(sub, exist_ok=True)
            cfg = argparse.Namespace(n=n, m=n_test, dim=shape[-1], outputs=10, seed=seed,
                                     x64=dt == "float64")
            predict_bench.make_kernels(cfg, sub)
            files[dt] = sub
        return files
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape))
    files = {"x": os.path.join(folder, "x.npy")}
    np.save(files["x"], x)
    return files


def load_inputs(files, dtype):
    """The arrays of ``make_inputs`` in ``dtype`` (for "predict": the kernel folder's)."""
    dtype = np.dtype(dtype)
    if dtype.name in files:
        from . import predict_bench
        return {k: v.astype(dtype) for k, v in predict_bench.load(files[dtype.name]).items()}
    return {k: np.load(v).astype(dtype) for k, v in files.items()}
