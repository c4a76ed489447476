"""Deterministic benchmark inputs, written once by the parent process and read by every worker
(so infwide and Neural Tangents see the same numbers)."""
import os

import numpy as np

__all__ = ["make_inputs", "load_inputs"]


def make_inputs(workload, size, n, n_test, shape, folder, seed=0):
    """Standard-normal inputs (per-feature standardised), saved as float64 .npy files; for a
    "predict" workload also 10-output targets from a fixed random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape))
    files = {"x": os.path.join(folder, "x.npy")}
    np.save(files["x"], x)
    if workload.kind == "predict":
        x_test = rng.standard_normal((n_test,) + tuple(shape))
        teacher = rng.standard_normal((int(np.prod(shape)), 10)) / np.sqrt(np.prod(shape))
        y = np.tanh(x.reshape(n, -1) @ teacher)
        for name, arr in (("x_test", x_test), ("y", y)):
            files[name] = os.path.join(folder, f"{name}.npy")
            np.save(files[name], arr)
    return files


def load_inputs(files, dtype):
    return {k: np.load(v).astype(dtype) for k, v in files.items()}
