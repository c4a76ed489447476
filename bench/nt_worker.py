"""Run one workload with Neural Tangents and print one JSON line (never imports infwide).

Run by the NT interpreter (``--nt-python``), from the repository root:
``PATH/python -m bench.nt_worker --workload NAME --dtype float32 --inputs '{...}' --out DIR``

As NT's documentation recommends, ``kernel_fn`` is ``jax.jit``-compiled with ``get`` static;
float64 sets ``jax_enable_x64``. One warm-up call (compilation), then ``repeats`` timed calls,
each waited for with ``block_until_ready``. Outputs are saved as .npy for the comparison.
"""
import argparse
import json
import sys

import numpy as np

from . import data, memory, timing, workloads
from .build import build

__all__ = ["main"]


def _ready(tree):
    import jax
    for leaf in jax.tree_util.tree_leaves(tree):
        leaf.block_until_ready()
    return tree


def _call(w, x, dtype):
    import jax
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax
    if w.kind == "kernel":
        kernel_fn = jax.jit(build(stax, w.spec)[2], static_argnames=("get",))
        return lambda: _ready(kernel_fn(x["x"], None, ("nngp", "ntk")))
    from . import predict_bench
    kernel_fn = predict_bench.LookupKernelFn(x, convert=jnp.asarray)
    y, ts = jnp.asarray(x["y"]), np.logspace(-1, 4, 20)

    def call():   # as bench/predict_bench.py: factory and call
        fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x["x_train"], y, diag_reg=1e-4)
        return _ready(fn(ts, x["x_test"], None, True))
    return call


def _arrays(w, out):
    if w.kind == "predict":
        return {f"{g}_{p}": getattr(getattr(out, g), p) for g in ("nngp", "ntk")
                for p in ("mean", "covariance")}
    return {"nngp": out.nngp, "ntk": out.ntk}


def run(args):
    dtype = np.dtype(args.dtype)
    import jax
    if dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt
    w = workloads.get(args.workload)
    x = data.load_inputs(json.loads(args.inputs), dtype)
    rss0 = memory.current_mb()
    call = _call(w, x, dtype)
    result = {"impl": "neural_tangents", "version": nt.__version__, "jax": jax.__version__,
              "workload": w.name, "dtype": dtype.name, "rss_after_import_mb": rss0}
    out = timing.time_calls(call, args.repeats, result)
    timing.save_outputs(_arrays(w, out), args.out, result)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.nt_worker")
    p.add_argument("--workload", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    print("RESULT " + json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
