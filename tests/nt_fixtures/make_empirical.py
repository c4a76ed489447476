"""Neural Tangents reference empirical kernels (run with the NT oracle's python).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_empirical.py

Each architecture in ``ARCHS`` is one text evaluated with Neural Tangents' stax here and with
infwide's stax in tests/empirical/test_empirical.py (the API is the same). Parameters are
drawn by NT's init_fn and stored as the flat list of their leaves (depth first, absent biases skipped), so
the test can load them into infwide's parameter tree of the same network. For each
(trace_axes, diagonal_axes) in ``AXES`` the file holds NT's empirical NNGP and NTK for (x1, x2)
and (x1, None). Writes tests/nt_fixtures/empirical.npz (float64).
"""
import json
import os

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

ARCHS = {
    "fc": ("stax.serial(stax.Dense(5, W_std=1.3, b_std=0.2), stax.Relu(), "
           "stax.Dense(3, W_std=0.9, b_std=0.1))", (3, 4), (2, 4)),
    "fc_standard": ("stax.serial(stax.Dense(5, W_std=1.3, b_std=0.2, parameterization='standard'), "
                    "stax.Erf(), stax.Dense(3, W_std=0.9, parameterization='standard'))",
                    (3, 4), (2, 4)),
    "residual": ("stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.serial("
                 "stax.Dense(4, b_std=0.1), stax.Gelu()), stax.Identity()), stax.FanInSum(), "
                 "stax.Dense(2))", (3, 4), (2, 4)),
    "conv": ("stax.serial(stax.Conv(3, (2, 2), padding='SAME', b_std=0.1), stax.Relu(), "
             "stax.AvgPool((2, 2)), stax.Conv(2, (2, 2), padding='CIRCULAR'), stax.Relu(), "
             "stax.Flatten(), stax.Dense(2, b_std=0.1))", (3, 5, 5, 2), (2, 5, 5, 2)),
    "conv_ln_gap": ("stax.serial(stax.Conv(3, (2, 2), W_std=1.5), stax.LayerNorm(), "
                    "stax.Relu(), stax.GlobalAvgPool(), stax.Dense(2))", (3, 4, 4, 2),
                    (2, 4, 4, 2)),
    "conv_out": ("stax.serial(stax.Conv(3, (2, 2), b_std=0.2), stax.Relu(), "
                 "stax.Conv(2, (2, 2)))", (2, 4, 4, 2), (2, 4, 4, 2)),
}
AXES = {
    "fc": [((-1,), ()), ((), ()), ((-1,), (0,)), ((), (-1,))],
    "fc_standard": [((-1,), ()), ((), (-1,))],
    "residual": [((-1,), ()), ((), ())],
    "conv": [((-1,), ()), ((), ())],
    "conv_ln_gap": [((-1,), ())],
    "conv_out": [((-1,), ()), ((-1,), (1, 2)), ((1, -1), ())],
}


def main():
    out, table = {}, {}
    rng = np.random.default_rng(20240601)
    for name, (text, shape1, shape2) in ARCHS.items():
        init_fn, apply_fn, _ = eval(text)
        x1, x2 = rng.standard_normal(shape1), rng.standard_normal(shape2)
        _, params = init_fn(jax.random.PRNGKey(len(out)), shape1)
        leaves = jax.tree_util.tree_leaves(params)
        out[f"{name}/x1"], out[f"{name}/x2"] = x1, x2
        for i, leaf in enumerate(leaves):
            out[f"{name}/param{i}"] = np.asarray(leaf)
        table[name] = {"text": text, "n_params": len(leaves), "axes": AXES[name]}
        for j, (tr, dg) in enumerate(AXES[name]):
            kf = nt.empirical_kernel_fn(apply_fn, trace_axes=tr, diagonal_axes=dg)
            for tag, xx2 in (("x1x2", x2), ("x1x1", None)):
                if 0 in [a % len(shape1) for a in dg] and xx2 is not None:
                    continue
                k = kf(x1, xx2, ("nngp", "ntk"), params)
                out[f"{name}/{j}/{tag}/nngp"] = np.asarray(k.nngp)
                out[f"{name}/{j}/{tag}/ntk"] = np.asarray(k.ntk)
    out["table"] = np.array(json.dumps(table))
    np.savez_compressed(os.path.join(HERE, "empirical.npz"), **out)
    print({k: v.shape for k, v in out.items() if "ntk" in k})


if __name__ == "__main__":
    main()
