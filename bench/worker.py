"""Run one workload with infwide in this (fresh) process and print one JSON line.

``python -m bench.worker --workload NAME --dtype float32 --inputs DIR --out DIR ...``

Order: one warm-up call at full size (JIT compilation), then ``repeats`` timed calls, then
the check of the fused kernel against the reference recursions (the layers' own ``kernel``
methods, ``INFWIDE_FUSION`` off) on the first ``n_check`` inputs (a fast wrong kernel is not
a result: the row is marked failed); the check comes last so that its memory does not count.
The last result is saved as .npy for the side-by-side comparison with Neural Tangents.
Peak memory: ``bench.memory`` (VmHWM of this process: whole run, and timed calls alone).
"""
import argparse
import json
import sys

import numpy as np

from . import data, memory, timing, workloads
from .build import build

__all__ = ["main"]

#: Largest relative difference (to the largest entry) allowed between the fused and the
#: reference kernels: rounding, plus ~sqrt(eps) on the NTK entries of an image with itself
#: (theta = atan2(sqrt(k11 k22 - k12^2), k12) at k12 ~ k11 = k22: see tests/test_fused_engine).
CHECK_TOL = {"float32": 1e-3, "float64": 1e-7}
#: Predictions with float32 factorisations vs float64 ones (regularised eigendecompositions of
#: a 3000 x 3000 kernel in float32 keep about 3-4 digits of the small eigen-directions).
PREDICT_TOL = {"float32": 5e-2, "float64": 1e-8}


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _kernel_call(net, x):
    return lambda: net.kernel_fn(x["x"], None, ("nngp", "ntk"))


def _predict_call(x, dtype, factor_dtype):
    """Factory and call of ``gradient_descent_mse_ensemble`` on the stored kernels (as
    ``bench/predict_bench.py``: the factorisations are part of every timed call)."""
    from infwide import predict
    from . import predict_bench
    kernel_fn = predict_bench.LookupKernelFn(x)
    ts = np.logspace(-1, 4, 20)

    def call():
        fn = predict.gradient_descent_mse_ensemble(kernel_fn, x["x_train"], x["y"],
                                                   diag_reg=1e-4, factor_dtype=factor_dtype)
        return fn(ts, x["x_test"], None, True)
    return call


def _arrays(w, out):
    if w.kind == "predict":
        return {f"{g}_{p}": getattr(getattr(out, g), p) for g in ("nngp", "ntk")
                for p in ("mean", "covariance")}
    return {"nngp": out.nngp, "ntk": out.ntk}


def _check(w, net, x, dtype):
    """Fused (fast) kernel vs the reference path on the first n_check inputs. Predictions:
    factorisations in the kernels' precision (timed) vs in float64 (infwide's default)."""
    if w.kind == "predict":
        fast = _arrays(w, _predict_call(x, dtype, dtype)())
        ref = _arrays(w, _predict_call(x, dtype, np.float64)())
        diffs = {k: _rel(fast[k], ref[k]) for k in fast}
        tol = PREDICT_TOL[np.dtype(dtype).name]
        return {"n": len(x["x_train"]), "vs": "float64 factorisations", "max_rel_diff": diffs,
                "ok": all(d <= tol for d in diffs.values())}
    from infwide.stax._fusion import fusion_disabled
    make = _kernel_call(net, {k: v[:w.n_check] for k, v in x.items()})
    fast = _arrays(w, make())
    with fusion_disabled():
        ref = _arrays(w, make())
    diffs = {k: _rel(fast[k], ref[k]) for k in fast}
    return {"n": w.n_check, "vs": "layer-by-layer reference", "max_rel_diff": diffs,
            "ok": all(d <= CHECK_TOL[np.dtype(dtype).name] for d in diffs.values())}


def run(args):
    import infwide
    from infwide import stax
    w = workloads.get(args.workload)
    dtype = np.dtype(args.dtype)
    files = json.loads(args.inputs)
    x = data.load_inputs(files, dtype)
    rss0 = memory.current_mb()
    net = build(stax, w.spec)
    result = {"impl": "infwide", "version": infwide.__version__, "workload": w.name,
              "dtype": dtype.name, "rss_after_import_mb": rss0}
    # Predictions factorise in the kernels' own precision, as Neural Tangents does.
    call = _predict_call(x, dtype, dtype) if w.kind == "predict" else _kernel_call(net, x)
    out = timing.time_calls(call, args.repeats, result)
    if args.check:   # after the timed calls: its garbage must not count in their memory
        result["check"] = _check(w, net, x, dtype)
    timing.save_outputs(_arrays(w, out), args.out, result)
    return result


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.worker")
    p.add_argument("--workload", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--inputs", required=True, help="JSON dict name -> .npy path")
    p.add_argument("--out", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--check", action="store_true")
    return p


def main(argv=None):
    result = run(build_parser().parse_args(argv))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
