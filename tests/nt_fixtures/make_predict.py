"""Write tests/nt_fixtures/predict.npz: Neural Tangents' ``predict`` on small float64 problems.

Run with the NT oracle (never a dependency of infwide):

    /tmp/nt-oracle/bin/python tests/nt_fixtures/make_predict.py

Every case is described in the ``spec`` entry (JSON): the function, its arguments, and the
keys of the stored inputs and outputs; tests/predict/test_predict_nt.py replays each case with
infwide.predict. Kernels come from NT's own Dense-ReLU-Dense ``kernel_fn`` (trace_axes=(-1,))
and from random feature maps for layouts with more axes (trace_axes=() and (1,)).
"""
import collections
import json
import os

import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import predict, stax  # noqa: E402

N, M, K, D = 8, 4, 3, 4
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "predict.npz")
rng = np.random.default_rng(2024)
arrays, spec = {}, []
KT = collections.namedtuple("Kernel", "nngp ntk")


def put(key, value):
    arrays[key] = np.asarray(value, dtype=np.float64)
    return key


def features_kernel(rows_train, rows_test, p=40):
    """Zipped PSD kernels (train-train, test-train, test-test) from random features."""
    n_tr, n_te = int(np.prod(rows_train)), int(np.prod(rows_test))
    j = rng.standard_normal((n_tr + n_te, p)) * rng.uniform(0.5, 1.5, p)
    full = j @ j.T / p
    def zipped(block, r1, r2):
        k = block.reshape(tuple(r1) + tuple(r2))
        n = len(r1)
        return np.moveaxis(k, tuple(range(n, 2 * n)), tuple(range(1, 2 * n, 2)))
    return (zipped(full[:n_tr, :n_tr], rows_train, rows_train),
            zipped(full[n_tr:, :n_tr], rows_test, rows_train),
            zipped(full[n_tr:, n_tr:], rows_test, rows_test))


def make_problems():
    """name -> dict(y shape, trace_axes, kernel keys, fx keys)."""
    problems = {}
    x_train = rng.standard_normal((N, D))
    x_test = rng.standard_normal((M, D))
    _, _, kernel_fn = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(),
                                  stax.Dense(1, W_std=1.3, b_std=0.2))
    kk = {"dd": kernel_fn(x_train, None), "td": kernel_fn(x_test, x_train),
          "tt": kernel_fn(x_test, None)}
    p = {"trace_axes": [-1], "x_train": put("relu/x_train", x_train),
         "x_test": put("relu/x_test", x_test)}
    for part, k in kk.items():
        for g in ("nngp", "ntk"):
            p[f"{g}_{part}"] = put(f"relu/{g}_{part}", getattr(k, g))
    y = rng.standard_normal((N, K))
    p.update(y=put("relu/y", y), fx_train_0=put("relu/fx_train_0", 0.3 * rng.standard_normal((N, K))),
             fx_test_0=put("relu/fx_test_0", 0.3 * rng.standard_normal((M, K))))
    problems["relu"] = p
    for name, y_shape, trace_axes, rows in (("notrace", (N, 2), [], (N, 2)),
                                            ("axis1", (N, 2, 3), [1], (N, 3))):
        q = {"trace_axes": trace_axes,
             "x_train": put(f"{name}/x_train", np.arange(N, dtype=float)[:, None]),
             "x_test": put(f"{name}/x_test", np.arange(M, dtype=float)[:, None] + 100)}
        rows_test = (M,) + tuple(rows[1:])
        for g in ("nngp", "ntk"):
            dd, td, tt = features_kernel(rows, rows_test)
            q[f"{g}_dd"], q[f"{g}_td"], q[f"{g}_tt"] = (put(f"{name}/{g}_{s}", a) for s, a in
                                                         (("dd", dd), ("td", td), ("tt", tt)))
        test_shape = list(y_shape)
        test_shape[0] = M
        q.update(y=put(f"{name}/y", rng.standard_normal(y_shape)),
                 fx_train_0=put(f"{name}/fx_train_0", 0.3 * rng.standard_normal(y_shape)),
                 fx_test_0=put(f"{name}/fx_test_0", 0.3 * rng.standard_normal(test_shape)))
        problems[name] = q
    return problems


def a(key):
    return jnp.asarray(arrays[key])


def lookup_kernel_fn(p):
    """A kernel_fn returning the stored kernels of problem ``p`` (matched on x1, x2)."""
    def kernel_fn(x1, x2=None, get=None, **kwargs):
        is_train = np.asarray(x1).shape == arrays[p["x_train"]].shape and np.allclose(
            np.asarray(x1), arrays[p["x_train"]])
        part = "dd" if is_train else ("tt" if x2 is None else "td")
        if isinstance(get, str):
            return a(p[f"{get}_{part}"])
        names = ("nngp", "ntk") if get is None else tuple(get)
        return collections.namedtuple("Kernel", names)(*(a(p[f"{g}_{part}"]) for g in names))
    return kernel_fn


def store_out(prefix, out):
    """Store an output (array, tuple, Gaussian, namedtuple of Gaussians) as a key tree."""
    if hasattr(out, "_fields"):
        return {f: store_out(f"{prefix}/{f}", getattr(out, f)) for f in out._fields}
    if isinstance(out, tuple):
        return [store_out(f"{prefix}/{i}", o) for i, o in enumerate(out)]
    return put(prefix, out)


T_VALUES = {"none": None, "scalar": 0.7, "array": [[0.0, 0.5], [3.0, 40.0]], "inf": [np.inf]}
REGS = [(0.0, False), (0.1, False), (0.05, True)]


def mse_cases(problems):
    for pname, p in problems.items():
        for ri, (reg, absolute) in enumerate(REGS):
            pred = predict.gradient_descent_mse(a(p["ntk_dd"]), a(p["y"]), learning_rate=0.5,
                                                diag_reg=reg, diag_reg_absolute_scale=absolute,
                                                trace_axes=tuple(p["trace_axes"]))
            for tname, t in T_VALUES.items():
                key = f"mse/{pname}/{ri}/{tname}"
                out = pred(t, a(p["fx_train_0"]), a(p["fx_test_0"]), a(p["ntk_td"]))
                spec.append(dict(fn="gradient_descent_mse", problem=pname, reg=reg,
                                 absolute=absolute, lr=0.5, t=tname, out=store_out(key, out)))
            out = pred(T_VALUES["array"], None, a(p["fx_test_0"]), a(p["ntk_td"]))
            spec.append(dict(fn="gradient_descent_mse", problem=pname, reg=reg,
                             absolute=absolute, lr=0.5, t="array", no_train=True,
                             out=store_out(f"mse/{pname}/{ri}/notrain", out)))


def ensemble_cases(problems):
    for pname, p in problems.items():
        for ri, (reg, absolute) in enumerate(REGS):
            pred = predict.gradient_descent_mse_ensemble(
                lookup_kernel_fn(p), a(p["x_train"]), a(p["y"]), learning_rate=2.0,
                diag_reg=reg, diag_reg_absolute_scale=absolute, trace_axes=tuple(p["trace_axes"]))
            for tname in ("none", "scalar", "array"):
                gets = (None, "ntk", ["ntk", "nngp"]) if pname == "relu" else (None,)
                for get in gets:
                    for cov in (False, True):
                        for test in (True, False):
                            if not test and (tname == "scalar" or get == "ntk"):
                                continue
                            x_test = a(p["x_test"]) if test else None
                            out = pred(T_VALUES[tname], x_test,
                                       tuple(get) if isinstance(get, list) else get, cov)
                            key = f"ens/{pname}/{ri}/{tname}/{get}/{cov}/{test}"
                            spec.append(dict(fn="gradient_descent_mse_ensemble", problem=pname,
                                             reg=reg, absolute=absolute, lr=2.0, t=tname,
                                             get=get, cov=cov, test=test,
                                             out=store_out(key, out)))


def gp_cases(problems):
    for pname, p in problems.items():
        for ri, (reg, absolute) in enumerate(REGS):
            k_dd = KT(a(p["nngp_dd"]), a(p["ntk_dd"]))
            pred = predict.gp_inference(k_dd, a(p["y"]), diag_reg=reg,
                                        diag_reg_absolute_scale=absolute,
                                        trace_axes=tuple(p["trace_axes"]))
            k_td = KT(a(p["nngp_td"]), a(p["ntk_td"]))
            k_tt = KT(a(p["nngp_tt"]), a(p["ntk_tt"]))
            for get in (None, "ntkgp", ["ntk", "nngp", "ntkgp"]):
                for with_tt in (False, True):
                    out = pred(tuple(get) if isinstance(get, list) else get, k_td,
                               k_tt if with_tt else None)
                    key = f"gp/{pname}/{ri}/{get}/{with_tt}"
                    spec.append(dict(fn="gp_inference", problem=pname, reg=reg,
                                     absolute=absolute, get=get, k_tt=with_tt,
                                     out=store_out(key, out)))


def ode_cases(problems):
    p = problems["relu"]
    labels = np.eye(K)[rng.integers(0, K, N)]
    put("relu/onehot", labels)
    ce = lambda fx, y_hat: -jnp.mean(jax.nn.log_softmax(fx) * y_hat)  # noqa: E731
    mse = lambda fx, y_hat: 0.5 * jnp.mean((fx - y_hat) ** 2)  # noqa: E731
    ts = [0.0, 0.5, 2.0, 10.0]
    for lname, loss, yk in (("cross_entropy", ce, "relu/onehot"), ("mse", mse, p["y"])):
        for mom in (None, 0.9):
            pred = predict.gradient_descent(loss, a(p["ntk_dd"]), a(yk), learning_rate=0.5,
                                            momentum=mom)
            out = pred(ts, a(p["fx_train_0"]), a(p["fx_test_0"]), a(p["ntk_td"]))
            key = f"ode/{lname}/{mom}"
            spec.append(dict(fn="gradient_descent", problem="relu", loss=lname, y=yk,
                             momentum=mom, lr=0.5, t=ts, out=store_out(key, out)))


def lr_cases(problems):
    p = problems["relu"]
    for size, mom in ((None, 0.0), (N * K, 0.0), (N * K, 0.9)):
        lr = predict.max_learning_rate(a(p["ntk_dd"]), y_train_size=size, momentum=mom)
        spec.append(dict(fn="max_learning_rate", problem="relu", size=size, momentum=mom,
                         out=put(f"lr/{size}/{mom}", lr)))


def main():
    problems = make_problems()
    mse_cases(problems)
    ensemble_cases(problems)
    gp_cases(problems)
    ode_cases(problems)
    lr_cases(problems)
    np.savez_compressed(OUT, spec=np.array(json.dumps({"problems": problems, "cases": spec})),
                        **arrays)
    print(f"wrote {OUT}: {len(spec)} cases, {len(arrays)} arrays, "
          f"{os.path.getsize(OUT) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
