"""Benchmark: gradient_descent_mse_ensemble, infwide vs Neural Tangents, on precomputed kernels.

The workload (the defaults): 3000 training points, 500 test points, 10 outputs, 20 training
times, NNGP and NTK (``get=None``) with the covariance. Kernels come from a Dense(512)-ReLU-
Dense(1) network on random inputs, computed once by infwide and stored as .npy files; both
libraries then read them through a look-up ``kernel_fn``, so only the prediction is timed
(factory + first call: the factorisations, and NT's compilation, included; then a second,
cached call). Each side runs in a fresh subprocess that reports its wall time and peak RSS.

    python bench/predict_bench.py                                   # infwide only
    python bench/predict_bench.py --nt-python /tmp/nt-oracle/bin/python   # side by side
    python bench/predict_bench.py --x64 --nt-python ...             # float64 kernels

``--factor-dtype`` picks infwide's factorisation precision: ``float32`` matches NT's default
(float32 kernels, float32 eigh), ``float64`` is infwide's default. The NT side never imports
infwide (the oracle environment does not have it); the infwide side never imports JAX.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

NET = dict(width=512, W_std=1.5, b_std=0.05)


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- data -------------------------------------------------------------------------------------
def make_kernels(args, folder):
    """Inputs, targets and the six kernels, written as .npy files in ``folder``."""
    from infwide import stax
    dt = np.float64 if args.x64 else np.float32
    rng = np.random.default_rng(args.seed)
    x_train = rng.standard_normal((args.n, args.dim)).astype(dt)
    x_test = rng.standard_normal((args.m, args.dim)).astype(dt)
    y = rng.standard_normal((args.n, args.outputs)).astype(dt)
    kernel_fn = stax.serial(stax.Dense(NET["width"], W_std=NET["W_std"], b_std=NET["b_std"]),
                            stax.Relu(),
                            stax.Dense(1, W_std=NET["W_std"], b_std=NET["b_std"])).kernel_fn
    t0 = time.perf_counter()
    parts = {"dd": kernel_fn(x_train, None, ("nngp", "ntk")),
             "td": kernel_fn(x_test, x_train, ("nngp", "ntk")),
             "tt": kernel_fn(x_test, None, ("nngp", "ntk"))}
    seconds = time.perf_counter() - t0
    for name, a in (("x_train", x_train), ("x_test", x_test), ("y", y)):
        np.save(os.path.join(folder, f"{name}.npy"), a)
    for part, k in parts.items():
        for g in ("nngp", "ntk"):
            np.save(os.path.join(folder, f"{g}_{part}.npy"), np.asarray(getattr(k, g), dtype=dt))
    return seconds


def load(folder):
    names = ["x_train", "x_test", "y"] + [f"{g}_{p}" for g in ("nngp", "ntk")
                                          for p in ("dd", "td", "tt")]
    return {k: np.load(os.path.join(folder, f"{k}.npy")) for k in names}


class LookupKernelFn:
    """``kernel_fn(x1, x2=None, get=None)`` serving stored kernels (train/test by batch size).

    ``convert`` turns a stored NumPy array into the library's array type.
    """

    def __init__(self, data, convert=None):
        self.n = data["x_train"].shape[0]
        self.arrays = {k: (convert(v) if convert else v) for k, v in data.items()
                       if k.startswith(("nngp", "ntk"))}
        import collections
        self.types = {}
        self.namedtuple = collections.namedtuple

    def __call__(self, x1, x2=None, get=None, **kwargs):
        part = "dd" if x1.shape[0] == self.n else ("tt" if x2 is None else "td")
        names = ("nngp", "ntk") if get is None else ((get,) if isinstance(get, str) else
                                                     tuple(get))
        if isinstance(get, str):
            return self.arrays[f"{get}_{part}"]
        if names not in self.types:
            self.types[names] = self.namedtuple("Kernel", names)
        return self.types[names](*(self.arrays[f"{g}_{part}"] for g in names))


# -- workers ----------------------------------------------------------------------------------
def _times(args):
    return np.logspace(-1, 4, args.times)


def worker_infwide(args):
    from infwide import predict
    data = load(args.dir)
    kernel_fn = LookupKernelFn(data)
    base = _rss_mb()
    t0 = time.perf_counter()
    pred = predict.gradient_descent_mse_ensemble(kernel_fn, data["x_train"], data["y"],
                                                 diag_reg=args.diag_reg,
                                                 factor_dtype=args.factor_dtype)
    out = pred(_times(args), data["x_test"], None, True)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred(_times(args), data["x_test"], None, True)
    second = time.perf_counter() - t0
    _save(args, out)
    return dict(first_s=first, second_s=second, base_rss_mb=base, peak_rss_mb=_peak_rss_mb(),
                load=os.getloadavg()[0])


def worker_nt(args):
    import jax
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from neural_tangents import predict
    data = load(args.dir)
    kernel_fn = LookupKernelFn(data, convert=jnp.asarray)
    y = jnp.asarray(data["y"])
    base = _rss_mb()
    t0 = time.perf_counter()
    pred = predict.gradient_descent_mse_ensemble(kernel_fn, data["x_train"], y,
                                                 diag_reg=args.diag_reg)
    out = jax.block_until_ready(pred(_times(args), data["x_test"], None, True))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(pred(_times(args), data["x_test"], None, True))
    second = time.perf_counter() - t0
    _save(args, out)
    return dict(first_s=first, second_s=second, base_rss_mb=base, peak_rss_mb=_peak_rss_mb(),
                load=os.getloadavg()[0])


def _save(args, out):
    if args.save:
        np.savez(args.save, **{f"{g}_{p}": np.asarray(getattr(getattr(out, g), p))
                               for g in ("nngp", "ntk") for p in ("mean", "covariance")})


# -- driver -----------------------------------------------------------------------------------
def run_worker(python, side, args, folder, save, factor_dtype=None):
    cmd = [python, os.path.abspath(__file__), "--worker", side, "--dir", folder, "--save", save,
           "--times", str(args.times), "--diag-reg", str(args.diag_reg)]
    if factor_dtype:
        cmd += ["--factor-dtype", factor_dtype]
    if args.x64:
        cmd.append("--x64")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{side} worker failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def max_rel_diff(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    return {k: float(np.abs(a[k].astype(np.float64) - b[k]).max() / np.abs(b[k]).max())
            for k in b.files}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000, help="training points")
    p.add_argument("--m", type=int, default=500, help="test points")
    p.add_argument("--outputs", type=int, default=10)
    p.add_argument("--times", type=int, default=20, help="number of training times")
    p.add_argument("--dim", type=int, default=32, help="input dimension")
    p.add_argument("--diag-reg", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x64", action="store_true", help="float64 kernels (NT with jax x64)")
    p.add_argument("--factor-dtype", default="both", choices=["float32", "float64", "both"])
    p.add_argument("--repeat", type=int, default=1, help="alternating runs; the best is kept")
    p.add_argument("--nt-python", help="python with neural_tangents, to run NT side by side")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--worker", choices=["infwide", "nt"], help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        if args.factor_dtype == "both":
            args.factor_dtype = None
        res = worker_infwide(args) if args.worker == "infwide" else worker_nt(args)
        print(json.dumps(res))
        return res
    if args.n == args.m:
        p.error("--n and --m must differ (the look-up kernel_fn tells them apart by size)")
    return drive(args)


def drive(args):
    dtypes = ["float32", "float64"] if args.factor_dtype == "both" else [args.factor_dtype]
    with tempfile.TemporaryDirectory() as folder:
        kernel_s = make_kernels(args, folder)
        print(f"kernels: n={args.n} m={args.m} outputs={args.outputs} times={args.times} "
              f"dtype={'float64' if args.x64 else 'float32'} ({kernel_s:.1f} s with infwide); "
              f"load {os.getloadavg()[0]:.1f}")
        runs = {}
        for _ in range(args.repeat):
            for fd in dtypes:
                r = run_worker(sys.executable, "infwide", args, folder,
                               os.path.join(folder, f"inf_{fd}.npz"), fd)
                _keep_best(runs, f"infwide factor_dtype={fd}", r)
            if args.nt_python:
                r = run_worker(args.nt_python, "nt", args, folder,
                               os.path.join(folder, "nt.npz"))
                _keep_best(runs, "neural_tangents", r)
        for name, r in runs.items():
            print(f"{name:32s} first call {r['first_s']:7.2f} s   cached call "
                  f"{r['second_s']:6.2f} s   peak RSS {r['peak_rss_mb']:7.0f} MB "
                  f"(+{r['peak_rss_mb'] - r['base_rss_mb']:.0f} MB over start), "
                  f"load {r['load']:.1f}")
        if args.nt_python:
            nt = runs["neural_tangents"]
            for fd in dtypes:
                r = runs[f"infwide factor_dtype={fd}"]
                diff = max_rel_diff(os.path.join(folder, f"inf_{fd}.npz"),
                                    os.path.join(folder, "nt.npz"))
                r["speedup_vs_nt"] = nt["first_s"] / r["first_s"]
                r["max_rel_diff_vs_nt"] = max(diff.values())
                print(f"factor_dtype={fd}: {r['speedup_vs_nt']:.2f}x faster than NT (first "
                      f"call), max |diff| / max |NT| = {r['max_rel_diff_vs_nt']:.1e}")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(config=vars(args), runs=runs), f, indent=2)
    return runs


def _keep_best(runs, name, r):
    if name not in runs or r["first_s"] < runs[name]["first_s"]:
        runs[name] = r


if __name__ == "__main__":
    main()
