"""``infwide classify``: kernel regression with an infinitely wide network on a data set.

Loads the data (``infwide.data``), preprocesses it, computes the NNGP/NTK train-train and
test-train kernels in tiles with progress (``infwide.batch``), predicts with
``infwide.predict`` (``gp_inference`` at the end of training, ``gradient_descent_mse`` at a
finite time ``--t``) on centred one-hot targets, and reports accuracy, MSE and timings.
"""
import argparse
import json
import math
import os
import time

import numpy as np

from ._args import positive_int

__all__ = ["add_parser", "run", "data_spec"]

_PREPROCESS = ("auto", "none", "standardize", "per-image", "zca")


def data_spec(text):
    """argparse type for --data: a known name, NAME:DIR, or a .npz/.csv path (exit 2 else)."""
    from ..data import DATASET_SPECS
    name, sep, rest = text.partition(":")
    ok = (name.lower() in ("digits", "mnist1d") and not sep) or \
         (name.lower() in ("cifar10", "mnist", "fashion-mnist", "fashion_mnist") and sep and rest) or \
         os.path.splitext(text)[1].lower() in (".npz", ".csv")
    if not ok:
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; expected one of "
                                         f"{', '.join(DATASET_SPECS)}")
    return text


def time_arg(text):
    """argparse type for --t: a number >= 0, or 'inf'/'none' for the end of training."""
    if text.lower() in ("inf", "none", "end"):
        return None
    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'inf'; got {text!r}") from None
    if not t >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'inf'; got {text!r}")
    return None if math.isinf(t) else t


def _preprocess(d, how, zca_reg):
    """Preprocessed (x_train, x_test) as float64, statistics from the training set only."""
    from .. import data
    if how == "auto":
        how = {2: "standardize", 3: "none"}.get(d.x_train.ndim, "per-image")
    if how == "none":
        return d.x_train.astype(np.float64), d.x_test.astype(np.float64), how
    if how == "standardize":
        return (*data.standardize(d.x_train, d.x_test), how)
    if how == "per-image":
        return data.normalize_per_image(d.x_train), data.normalize_per_image(d.x_test), how
    return (*data.zca_whiten(d.x_train, d.x_test, reg=zca_reg), f"zca({zca_reg:g})")


def _network_inputs(arch, x_train, x_test):
    from ..sklearn.networks import build_network
    if arch == "fc":
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    elif x_train.ndim < 3:
        raise ValueError(f"--arch {arch} needs images or sequences, but the data has shape "
                         f"{x_train.shape[1:]} per example; use --arch fc.")
    return build_network(arch, n_spatial=x_train.ndim - 2), x_train, x_test


def _to_device(x, dtype, device):
    x = np.ascontiguousarray(x, dtype=dtype)
    if device == "cpu":
        return x
    from ..device import require
    try:
        cupy = require("cupy")
    except ImportError as e:
        raise OSError(f"--device gpu: {e}") from None
    return cupy.asarray(x)


def _kernels(layer, x_train, x_test, gets, args):
    """Train-train and test-train kernels (namedtuples over ``gets``) and their timings."""
    from .. import batch
    progress = None if args.no_progress else True
    kfn = batch(layer.kernel_fn, batch_size=args.batch_size, progress=progress)
    t0 = time.perf_counter()
    k_dd = kfn(x_train, None, gets)
    t1 = time.perf_counter()
    k_td = kfn(x_test, x_train, gets)
    return k_dd, k_td, t1 - t0, time.perf_counter() - t1


def _predict(g, k_dd, k_td, y, args):
    """Posterior mean of the ensemble in regime ``g`` at time ``args.t``."""
    from .. import predict
    from ..backend import to_numpy
    k_dd_g, k_td_g = to_numpy(getattr(k_dd, g)), to_numpy(getattr(k_td, g))
    if args.t is None:
        fn = predict.gp_inference(k_dd_g, y, diag_reg=args.diag_reg)
        return np.asarray(fn(get=g, k_test_train=k_td_g))
    fn = predict.gradient_descent_mse(k_dd_g, y, learning_rate=1.0, diag_reg=args.diag_reg)
    return np.asarray(fn(args.t, 0.0, 0.0, k_td_g)[1])


def run(args):
    from .. import data
    t_start = time.perf_counter()
    d = data.load_dataset(args.data, args.n_train, args.n_test, seed=args.seed)
    x_train, x_test, prep = _preprocess(d, args.preprocess, args.zca_reg)
    layer, x_train, x_test = _network_inputs(args.arch, x_train, x_test)
    gets = ("nngp", "ntk") if args.get == "both" else (args.get,)
    dtype = np.dtype(args.dtype)
    x_train, x_test = (_to_device(x, dtype, args.device) for x in (x_train, x_test))
    print(f"infwide classify: {args.arch} on {d.name} ({len(d.y_train)} train, {len(d.y_test)} "
          f"test, input {tuple(x_train.shape[1:])}, {d.num_classes} classes), preprocessing "
          f"{prep}, {dtype.name} on {args.device}", flush=True)
    k_dd, k_td, t_dd, t_td = _kernels(layer, x_train, x_test, gets, args)
    y_train = data.one_hot(d.y_train, d.num_classes)
    y_test = data.one_hot(d.y_test, d.num_classes)
    results = {}
    for g in gets:
        t0 = time.perf_counter()
        mean = _predict(g, k_dd, k_td, y_train, args)
        results[g] = {"accuracy": float(np.mean(mean.argmax(1) == d.y_test)),
                      "mse": float(np.mean((mean - y_test) ** 2)),
                      "predict_seconds": time.perf_counter() - t0}
        print(f"  {g:4s}: accuracy {results[g]['accuracy']:.4f}  MSE {results[g]['mse']:.5f}")
    total = time.perf_counter() - t_start
    print(f"  time: train-train kernel {t_dd:.2f} s, test-train kernel {t_td:.2f} s, "
          f"total {total:.2f} s")
    if args.out:
        _write_json(args, d, prep, results, t_dd, t_td, total)
    return 0


def _write_json(args, d, prep, results, t_dd, t_td, total):
    record = {"arch": args.arch, "data": args.data, "n_train": int(len(d.y_train)),
              "n_test": int(len(d.y_test)), "num_classes": d.num_classes,
              "get": list(results), "t": args.t, "diag_reg": args.diag_reg,
              "dtype": args.dtype, "device": args.device, "preprocess": prep, "seed": args.seed,
              "results": results, "seconds": {"train_train_kernel": t_dd,
                                              "test_train_kernel": t_td, "total": total}}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"  wrote {args.out}")


def add_parser(sub):
    from ..sklearn.networks import NETWORKS
    c = sub.add_parser("classify", help="classify a data set by NNGP/NTK kernel regression",
                       description=__doc__)
    c.add_argument("--arch", choices=NETWORKS, default="fc", help="network architecture")
    c.add_argument("--data", type=data_spec, default="digits",
                   help="digits | mnist1d | cifar10:DIR | mnist:DIR | fashion-mnist:DIR | "
                        "FILE.npz | FILE.csv (default: digits)")
    c.add_argument("--n-train", type=positive_int, default=None, help="training examples")
    c.add_argument("--n-test", type=positive_int, default=None, help="test examples")
    c.add_argument("--get", choices=["nngp", "ntk", "both"], default="both")
    c.add_argument("--t", type=time_arg, default=None,
                   help="training time (default: inf, the end of training)")
    c.add_argument("--diag-reg", type=float, default=1e-4,
                   help="ridge relative to the mean kernel diagonal (default 1e-4)")
    c.add_argument("--preprocess", choices=_PREPROCESS, default="auto",
                   help="auto: per-image for images, standardize for tables, none for "
                        "sequences (MNIST-1D is standardised when generated)")
    c.add_argument("--zca-reg", type=float, default=0.1,
                   help="ZCA regularisation relative to the mean eigenvalue (with --preprocess zca)")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    c.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    c.add_argument("--batch-size", type=int, default=0,
                   help="examples per kernel tile (0: sized from free memory)")
    c.add_argument("--seed", type=int, default=0, help="split seed (digits, files); MNIST-1D seed offset")
    c.add_argument("--out", default=None, help="write the results as JSON to this path")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run)
