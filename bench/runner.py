"""Run workers in fresh subprocesses (one per workload, dtype and implementation) and gather
their results: times, peak memory and, side by side, how far the two kernels are apart."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from . import data, flops, workloads

__all__ = ["thread_env", "run_worker", "run_workload", "compare"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def thread_env(threads, nt=False):
    """Environment pinning every thread pool (Numba, OpenMP, OpenBLAS, MKL, XLA) to
    ``threads`` (None: leave the defaults, i.e. all cores)."""
    env = dict(os.environ)
    if threads:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS"):
            env[var] = str(threads)
        if nt and threads == 1:
            env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
    return env


def run_worker(python, module, args, threads, nt=False, timeout=None):
    """Run ``python -m module args`` from the repository root; the parsed RESULT line, or a
    dict with ``error`` (the tail of stderr) when it failed."""
    cmd = [python, "-m", module] + args
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=thread_env(threads, nt), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout)[-2000:], "returncode": proc.returncode}


def _inline(args):
    """Run the infwide worker in this process (tests: no interpreter start-up per run; peak
    memory is then the whole process's)."""
    from . import worker
    try:
        return worker.run(worker.build_parser().parse_args(args))
    except Exception as e:   # reported in the results like a failed subprocess
        return {"error": f"{type(e).__name__}: {e}"}


def compare(ours, theirs):
    """Largest relative difference (to the largest entry of NT's) per output array."""
    out = {}
    for name, path in ours.get("outputs", {}).items():
        other = theirs.get("outputs", {}).get(name)
        if other is None:
            continue
        a = np.load(path).astype(np.float64)
        b = np.load(other).astype(np.float64)
        if a.shape != b.shape:
            out[name] = f"shape {a.shape} vs {b.shape}"
            continue
        out[name] = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
    return out


def _model_flops(w, n, n_test, shape):
    if w.kind == "predict":
        return flops.predict_flops(w.spec, shape, n, n_test)
    return flops.kernel_flops(w.spec, shape, n)


def run_workload(name, dtypes, opts, log=print):
    """All requested runs of one workload: a list of result rows (one per dtype)."""
    w = workloads.get(name)
    size = opts.size
    n = opts.n or w.n[size]
    n_test = (opts.n_test or w.n_test[size]) if w.kind == "predict" else None
    shape = workloads.input_shape(w, size)
    rows = []
    n64 = (w.n64 or {}).get(size) if not opts.n else None
    if n64 is not None and "float64" in dtypes and len(dtypes) > 1:
        # float64 at its own size: a separate set of inputs
        rest = [d for d in dtypes if d != "float64"]
        o64 = argparse.Namespace(**{**vars(opts), "n": n64})
        return run_workload(name, rest, opts, log) + run_workload(name, ["float64"], o64, log)
    if n64 is not None and dtypes == ["float64"]:
        n = n64
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        if getattr(opts, "outputs_dir", None):   # keep inputs and outputs
            tmp = os.path.join(opts.outputs_dir, name)
            os.makedirs(tmp, exist_ok=True)
        files = data.make_inputs(w, size, n, n_test, shape, tmp, dtypes)
        for dtype in dtypes:
            row = {"workload": name, "dtype": dtype, "n": n, "n_test": n_test,
                   "shape": list(shape), "what": w.what,
                   "model_gflop": _model_flops(w, n, n_test, shape) / 1e9}
            args = ["--workload", name, "--dtype", dtype, "--inputs", json.dumps(files),
                    "--repeats", str(opts.repeats)]
            out = os.path.join(tmp, f"infwide-{dtype}")
            os.makedirs(out, exist_ok=True)
            log(f"  {name} {dtype}: infwide (n={n}) ...")
            wargs = args + ["--out", out] + (["--check"] if opts.check else [])
            row["infwide"] = _inline(wargs) if opts.inline else \
                run_worker(sys.executable, "bench.worker", wargs, opts.threads,
                           timeout=opts.timeout)
            if opts.nt_python:
                out_nt = os.path.join(tmp, f"nt-{dtype}")
                os.makedirs(out_nt, exist_ok=True)
                log(f"  {name} {dtype}: neural_tangents ...")
                nt_args = args[:-1] + [str(opts.nt_repeats or opts.repeats), "--out", out_nt]
                row["nt"] = run_worker(opts.nt_python, "bench.nt_worker", nt_args, opts.threads,
                                       nt=True, timeout=opts.timeout)
                row["max_rel_diff_vs_nt"] = compare(row["infwide"], row["nt"])
            rows.append(row)
    return rows
