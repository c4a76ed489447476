"""Neural Tangents reference kernels for every nonlinearity (run with the NT oracle's python).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_activations.py

Each case puts one activation expression (``ACTS``) into the architectures of ``ARCHS`` (the
text ``ACT`` is replaced by it) and evaluates it with Neural Tangents' stax here and with
infwide's stax in tests/stax/test_activations_nt.py: the same text, the API being the same
(``xp`` is ``jax.numpy`` here and ``numpy`` there). Writes tests/nt_fixtures/activations.npz with the
inputs, the case table (JSON) and, per case and architecture, NT's nngp/ntk for (x1, x2) and
(x1, None) and the cov1 of (x1, x2), all float64.

Hermite is evaluated on the ``*_unit`` architectures only (unit-variance pre-activations, the
assumption under which Neural Tangents' Hermite kernel is exact).
"""
import json
import os
import warnings

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as xp  # noqa: E402  (the name the expressions use)
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

ARCHS = {
    "fc": "stax.serial(stax.Dense(6, W_std=1.3, b_std=0.2), ACT, stax.Dense(5, W_std=0.9, "
          "b_std=0.1), ACT, stax.Dense(2, W_std=1.1, b_std=0.05))",
    "diag": "stax.serial(stax.Conv(3, (2, 2), padding='SAME', W_std=1.2, b_std=0.1), ACT, "
            "stax.Conv(3, (2, 2), W_std=0.9, b_std=0.05), ACT, stax.Flatten(), stax.Dense(2))",
    "full": "stax.serial(stax.Conv(3, (2, 2), padding='SAME', W_std=1.2, b_std=0.1), ACT, "
            "stax.Conv(3, (2, 2), W_std=0.9, b_std=0.05), ACT, stax.GlobalAvgPool(), "
            "stax.Dense(2))",
    "fc_unit": "stax.serial(stax.Dense(6), ACT, stax.Dense(5), ACT, stax.Dense(2))",
    "full_unit": "stax.serial(stax.Conv(3, (2, 2)), ACT, stax.Conv(3, (2, 2)), ACT, "
                 "stax.GlobalAvgPool(), stax.Dense(2))",
}
GENERAL = ["fc", "diag", "full"]
UNIT = ["fc_unit", "full_unit"]

ACTS = {
    "relu": ("stax.Relu()", GENERAL),
    "leaky": ("stax.LeakyRelu(0.15)", GENERAL),
    "abs": ("stax.Abs()", GENERAL),
    "abrelu": ("stax.ABRelu(-0.4, 1.3)", GENERAL),
    "relu_stab": ("stax.Relu(do_stabilize=True)", ["fc"]),
    "erf": ("stax.Erf()", GENERAL),
    "erf_abc": ("stax.Erf(0.8, 1.3, 0.1)", GENERAL),
    "sigmoid_like": ("stax.Sigmoid_like()", GENERAL),
    "gelu": ("stax.Gelu()", GENERAL),
    "gelu_approx": ("stax.Gelu(approximate=True)", ["fc"]),
    "sin": ("stax.Sin()", GENERAL),
    "sin_abc": ("stax.Sin(1.2, 0.7, 0.3)", GENERAL),
    "cos": ("stax.Cos()", ["fc"]),
    "cos_abc": ("stax.Cos(0.9, 1.1, -0.2)", GENERAL),
    "rbf": ("stax.Rbf(0.7)", GENERAL),
    "rbf_default": ("stax.Rbf()", ["fc"]),
    "gaussian": ("stax.Gaussian()", GENERAL),
    "gaussian_pos": ("stax.Gaussian(0.8, 0.05)", ["fc"]),
    "exp": ("stax.Exp(0.5, 0.4)", GENERAL),
    "exp_default": ("stax.Exp()", ["fc"]),
    "sign": ("stax.Sign()", GENERAL),
    "polynomial": ("stax.Polynomial([0.3, -1., 0.5, 0.2])", GENERAL),
    "numerical_sin": ("stax.ElementwiseNumerical(xp.sin, 40)", ["fc", "diag"]),
    "numerical_erf": ("stax.ElementwiseNumerical(jax_erf, 60)", ["fc"]),
}
ACTS.update({f"monomial{n}": (f"stax.Monomial({n})", GENERAL) for n in range(6)})
ACTS.update({f"rectified{n}": (f"stax.RectifiedMonomial({n})", GENERAL) for n in range(4)})
ACTS.update({f"hermite{n}": (f"stax.Hermite({n})", UNIT) for n in range(5)})


def inputs(rng):
    x1 = rng.standard_normal((4, 5))
    x2 = rng.standard_normal((3, 5))
    im1 = rng.standard_normal((3, 4, 4, 2))
    im2 = rng.standard_normal((2, 4, 4, 2))
    unit = lambda x: x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True))
    return {"fc": (x1, x2), "diag": (im1, im2), "full": (im1, im2),
            "fc_unit": (unit(x1), unit(x2)), "full_unit": (unit(im1), unit(im2))}


def main():
    warnings.simplefilter("ignore")
    data = inputs(np.random.default_rng(20240611))
    out = {"cases": np.array(json.dumps({"archs": ARCHS, "acts": ACTS}))}
    for arch, (x1, x2) in data.items():
        out[f"x1|{arch}"], out[f"x2|{arch}"] = x1, x2
    env = {"stax": stax, "xp": xp, "jax_erf": jax.scipy.special.erf}
    for key, (act, archs) in ACTS.items():
        for arch in archs:
            kernel_fn = eval(ARCHS[arch].replace("ACT", act), env)[2]
            x1, x2 = data[arch]
            k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"))
            kk = kernel_fn(x1, None, ("nngp", "ntk"))
            for name, val in (("nngp", k.nngp), ("ntk", k.ntk), ("cov1", k.cov1),
                              ("nngp_self", kk.nngp), ("ntk_self", kk.ntk)):
                out[f"{key}|{arch}|{name}"] = np.asarray(val, dtype=np.float64)
    path = os.path.join(HERE, "activations.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(out)} arrays)")


if __name__ == "__main__":
    main()
