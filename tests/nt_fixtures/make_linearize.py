"""Neural Tangents reference for ``linearize``, ``taylor_expand`` and ``empirical_ntk_vp_fn``
(run with the NT oracle's python).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_linearize.py

Each architecture in ``ARCHS`` is one text evaluated with NT's stax here and infwide's stax in
tests/training/test_linearize_nt.py. Parameters ``p0`` (NT's init_fn) and a displaced
``p1 = p0 + 0.3 * N(0, 1)`` are stored as flat lists of leaves (depth first, absent biases
skipped). For each: ``nt.linearize(f, p0)(p1, x)``, ``nt.taylor_expand(f, p0, d)(p1, x)`` for
``d`` in ``DEGREES``, and ``nt.empirical_ntk_vp_fn(f, x1, x2, p0)(ct)``. Writes
tests/nt_fixtures/linearize.npz (float64).
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
    "fc": ("stax.serial(stax.Dense(6, W_std=1.3, b_std=0.2), stax.Erf(), "
           "stax.Dense(3, W_std=0.9, b_std=0.1))", (4, 3), (2, 3), (1, 2, 3)),
    "residual_ln": ("stax.serial(stax.Dense(5), stax.FanOut(2), stax.parallel(stax.serial("
                    "stax.Dense(5, b_std=0.1), stax.Gelu()), stax.Identity()), stax.FanInSum(), "
                    "stax.LayerNorm(), stax.Dense(2, parameterization='standard'))",
                    (3, 4), (2, 4), (1, 2, 3)),
    "conv": ("stax.serial(stax.Conv(3, (2, 2), padding='SAME', b_std=0.1), stax.Relu(), "
             "stax.AvgPool((2, 2)), stax.Conv(2, (2, 2), padding='CIRCULAR'), stax.Erf(), "
             "stax.Flatten(), stax.Dense(2, b_std=0.1))", (3, 5, 5, 2), (2, 5, 5, 2), (1,)),
}


def main():
    out, table = {}, {}
    rng = np.random.default_rng(20261203)
    for k, (name, (text, shape1, shape2, degrees)) in enumerate(ARCHS.items()):
        init_fn, apply_fn, _ = eval(text)
        x1, x2 = rng.standard_normal(shape1), rng.standard_normal(shape2)
        _, p0 = init_fn(jax.random.PRNGKey(k), shape1)
        leaves, tree = jax.tree_util.tree_flatten(p0)
        shifted = [np.asarray(a) + 0.3 * rng.standard_normal(np.shape(a)) for a in leaves]
        p1 = jax.tree_util.tree_unflatten(tree, shifted)
        out[f"{name}/x1"], out[f"{name}/x2"] = x1, x2
        for i, (a, b) in enumerate(zip(leaves, shifted)):
            out[f"{name}/p0_{i}"], out[f"{name}/p1_{i}"] = np.asarray(a), b
        out[f"{name}/f"] = np.asarray(apply_fn(p1, x1))
        out[f"{name}/lin"] = np.asarray(nt.linearize(apply_fn, p0)(p1, x1))
        for d in degrees:
            out[f"{name}/taylor{d}"] = np.asarray(nt.taylor_expand(apply_fn, p0, d)(p1, x1))
        ct = rng.standard_normal(np.shape(apply_fn(p0, x2)))
        out[f"{name}/ct"] = ct
        out[f"{name}/ntk_vp"] = np.asarray(nt.empirical_ntk_vp_fn(apply_fn, x1, x2, p0)(ct))
        table[name] = {"text": text, "n_params": len(leaves), "degrees": list(degrees)}
    out["table"] = np.array(json.dumps(table))
    np.savez_compressed(os.path.join(HERE, "linearize.npz"), **out)
    print({k: v.shape for k, v in out.items() if k != "table"})


if __name__ == "__main__":
    main()
