"""Neural Tangents reference kernels for the spatial layers (run with the NT oracle's python).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_spatial.py

Each case is one expression over ``stax``, evaluated with Neural Tangents' stax here and with
infwide's stax in tests/stax/test_spatial_nt.py (the same text: the API is the same). Writes
tests/nt_fixtures/spatial.npz with, per case, the inputs and NT's nngp/ntk for (x1, x2) and
(x1, None), un-reversed to the natural spatial order.
"""
import os

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (expression, input shape without batch, batch sizes (n1, n2))
CASES = {
    # -- Conv alone: full spatial output, every padding, strides, non-square -----------------
    "conv_valid": ("stax.Conv(3, (3, 3), W_std=1.3, b_std=0.2)", (6, 6, 2)),
    "conv_same_s2": ("stax.Conv(3, (3, 3), (2, 2), 'SAME', W_std=1.1, b_std=0.3)", (7, 6, 2)),
    "conv_circ_s2": ("stax.Conv(3, (3, 2), (2, 1), 'CIRCULAR', W_std=0.9, b_std=0.1)", (6, 5, 2)),
    "conv_circ": ("stax.Conv(3, (3, 3), padding='CIRCULAR')", (5, 4, 2)),
    "conv_valid_s3": ("stax.Conv(2, (2, 3), (3, 2), 'VALID', b_std=0.5)", (8, 7, 1)),
    "conv_standard": ("stax.Conv(3, (3, 3), padding='SAME', W_std=1.2, b_std=0.4, "
                      "parameterization='standard', s=(2, 3))", (5, 5, 2)),
    "conv_nchw": ("stax.serial(stax.Conv(3, (3, 2), padding='SAME', W_std=1.4, "
                  "dimension_numbers=('NCHW', 'OIHW', 'NCHW')), stax.Relu(), "
                  "stax.Conv(2, (2, 2), dimension_numbers=('NCHW', 'HWIO', 'NHWC')))",
                  (2, 6, 5)),
    # -- Conv nets read out by Flatten (diagonal form) --------------------------------------
    "cnn_flat_valid": ("stax.serial(stax.Conv(4, (3, 3), W_std=1.5, b_std=0.1), stax.Relu(), "
                       "stax.Conv(4, (2, 2), (2, 2), W_std=1.5), stax.Relu(), stax.Flatten(), "
                       "stax.Dense(1, W_std=1.2, b_std=0.05))", (7, 7, 2)),
    "cnn_flat_same": ("stax.serial(stax.Conv(4, (3, 3), padding='SAME', W_std=1.5, b_std=0.1), "
                      "stax.Relu(), stax.Conv(4, (3, 3), (2, 2), 'SAME'), stax.Abs(), "
                      "stax.Flatten(), stax.Dense(1))", (6, 6, 2)),
    "cnn_flat_circ": ("stax.serial(stax.Conv(4, (3, 3), padding='CIRCULAR', W_std=1.5), "
                      "stax.Relu(), stax.Conv(4, (3, 3), (2, 2), 'CIRCULAR', b_std=0.2), "
                      "stax.Relu(), stax.Flatten(), stax.Dense(1))", (6, 6, 2)),
    # -- pooling (full form) -------------------------------------------------------------------
    "avgpool_valid": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME', W_std=1.5), stax.Relu(), "
                      "stax.AvgPool((2, 2), (2, 2)), stax.Flatten(), stax.Dense(1))", (6, 6, 2)),
    "avgpool_same_edges": ("stax.serial(stax.Conv(3, (2, 2), W_std=1.5), stax.Relu(), "
                           "stax.AvgPool((3, 3), (2, 2), 'SAME', normalize_edges=True))",
                           (6, 6, 2)),
    "avgpool_same": ("stax.serial(stax.Conv(3, (2, 2), W_std=1.5), stax.Relu(), "
                     "stax.AvgPool((3, 2), (2, 1), 'SAME'))", (7, 6, 2)),
    "avgpool_circ": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME'), stax.Relu(), "
                     "stax.AvgPool((3, 3), (2, 2), 'CIRCULAR'), stax.GlobalAvgPool())", (6, 6, 2)),
    "avgpool_default_stride": ("stax.serial(stax.Conv(3, (2, 2)), stax.Relu(), "
                               "stax.AvgPool((2, 2)), stax.Flatten())", (5, 5, 1)),
    "sumpool": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME'), stax.Relu(), "
                "stax.SumPool((2, 2), (2, 2), 'SAME'), stax.Conv(2, (2, 2)), stax.Relu(), "
                "stax.Flatten())", (5, 5, 2)),
    "gap": ("stax.serial(stax.Conv(4, (3, 3), padding='SAME', W_std=1.4, b_std=0.2), "
            "stax.Relu(), stax.Conv(4, (3, 3), padding='SAME'), stax.Relu(), "
            "stax.GlobalAvgPool(), stax.Dense(1))", (6, 6, 2)),
    "gsp": ("stax.serial(stax.Conv(4, (3, 3), padding='CIRCULAR'), stax.Relu(), "
            "stax.GlobalSumPool())", (5, 5, 2)),
    # -- transposed and local convolutions -------------------------------------------------
    "convT_valid": ("stax.ConvTranspose(3, (3, 3), (2, 2), W_std=1.2, b_std=0.1)", (3, 3, 2)),
    "convT_same": ("stax.serial(stax.ConvTranspose(3, (3, 2), (2, 1), 'SAME'), stax.Relu(), "
                   "stax.Flatten())", (4, 3, 2)),
    "convT_circ": ("stax.ConvTranspose(3, (3, 3), (2, 2), 'CIRCULAR', b_std=0.3)", (3, 3, 2)),
    "convT_circ_flat": ("stax.serial(stax.ConvTranspose(3, (4, 3), (2, 2), 'CIRCULAR'), "
                        "stax.Relu(), stax.Flatten())", (3, 4, 2)),
    "convT_valid_big": ("stax.serial(stax.Conv(3, (2, 2)), stax.Relu(), "
                        "stax.ConvTranspose(3, (5, 5), (1, 2), 'VALID', b_std=0.2), "
                        "stax.Relu(), stax.GlobalAvgPool())", (4, 4, 2)),
    "local_gap": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME'), stax.Relu(), "
                  "stax.ConvLocal(3, (3, 3), padding='SAME', b_std=0.3), stax.GlobalAvgPool())",
                  (5, 5, 2)),
    "local_relu_pool": ("stax.serial(stax.ConvLocal(3, (2, 2), (1, 2), b_std=0.3), stax.Relu(), "
                        "stax.AvgPool((2, 2)), stax.Flatten())", (5, 6, 2)),
    "local_flat": ("stax.serial(stax.ConvLocal(3, (3, 3), padding='CIRCULAR', W_std=1.3), "
                   "stax.Relu(), stax.ConvLocal(2, (2, 2), (2, 2)), stax.Relu(), stax.Flatten())",
                   (6, 6, 2)),
    # -- LayerNorm and Dropout ----------------------------------------------------------------
    "layernorm_flat": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME', b_std=0.3), "
                       "stax.LayerNorm(), stax.Relu(), stax.Flatten())", (5, 5, 2)),
    "layernorm_spatial_gap": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME', b_std=0.3), "
                              "stax.LayerNorm(axis=(1, 2, 3)), stax.Relu(), "
                              "stax.GlobalAvgPool())", (5, 5, 2)),
    "layernorm_h_full": ("stax.serial(stax.Conv(3, (2, 2), b_std=0.3), "
                         "stax.LayerNorm(axis=(1, 3), eps=0.1))", (6, 5, 2)),
    "dropout_flat": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME', W_std=1.5), stax.Relu(), "
                     "stax.Dropout(0.7), stax.Conv(3, (3, 3)), stax.Relu(), stax.Flatten())",
                     (5, 5, 2)),
    "dropout_gap": ("stax.serial(stax.Conv(3, (3, 3), padding='SAME'), stax.Relu(), "
                    "stax.Dropout(0.6), stax.Conv(3, (3, 3), padding='SAME'), stax.Relu(), "
                    "stax.GlobalAvgPool())", (4, 4, 2)),
    "dropout_test": ("stax.serial(stax.Conv(3, (3, 3)), stax.Relu(), stax.Dropout(0.5, 'test'), "
                     "stax.Flatten())", (4, 4, 2)),
    # -- residual blocks -------------------------------------------------------------------
    "resblock_gap": ("stax.serial(stax.Conv(4, (3, 3), padding='SAME'), stax.FanOut(2), "
                     "stax.parallel(stax.serial(stax.Relu(), stax.Conv(4, (3, 3), padding='SAME', "
                     "W_std=1.3), stax.Relu(), stax.Conv(4, (3, 3), padding='SAME')), "
                     "stax.Identity()), stax.FanInSum(), stax.GlobalAvgPool())", (5, 5, 2)),
    "resblock_flat": ("stax.serial(stax.Conv(4, (3, 3), padding='CIRCULAR'), stax.FanOut(2), "
                      "stax.parallel(stax.serial(stax.Relu(), stax.Conv(4, (3, 3), (2, 2), "
                      "padding='CIRCULAR')), stax.Conv(4, (1, 1), (2, 2), padding='CIRCULAR')), "
                      "stax.FanInSum(), stax.Relu(), stax.Flatten())", (6, 6, 2)),
    # -- 1-d and 3-d -------------------------------------------------------------------------
    "conv1d_same_s2": ("stax.serial(stax.Conv(3, (3,), (2,), 'SAME', b_std=0.1), stax.Relu(), "
                       "stax.Conv(3, (2,), padding='CIRCULAR'))", (9, 2)),
    "pool1d": ("stax.serial(stax.Conv(3, (3,), padding='CIRCULAR'), stax.Relu(), "
               "stax.AvgPool((3,), (2,), 'SAME', normalize_edges=True), "
               "stax.Conv(2, (2,), padding='SAME'), stax.Relu(), stax.GlobalAvgPool())", (8, 2)),
    "flat1d": ("stax.serial(stax.Conv(3, (4,), (2,)), stax.Relu(), stax.Flatten(), "
               "stax.Dense(2))", (10, 3)),
    "conv3d_gap": ("stax.serial(stax.Conv(3, (2, 2, 2), padding='SAME', b_std=0.2), stax.Relu(), "
                   "stax.GlobalAvgPool())", (4, 3, 3, 2)),
    "conv3d_flat": ("stax.serial(stax.Conv(3, (2, 2, 1), (2, 1, 1), 'CIRCULAR'), stax.Relu(), "
                    "stax.AvgPool((1, 2, 2)), stax.Flatten())", (4, 4, 3, 1)),
    "convT1d": ("stax.ConvTranspose(2, (3,), (2,), 'CIRCULAR')", (4, 2)),
}


def _natural(k):
    return k.reverse() if k.is_reversed else k


def main():
    rng = np.random.default_rng(20240611)
    out = {}
    for name, (expr, shape) in CASES.items():
        x1 = rng.standard_normal((2,) + shape)
        x2 = rng.standard_normal((3,) + shape)
        kernel_fn = eval(expr)[2]
        k12 = _natural(kernel_fn(x1, x2))
        k11 = _natural(kernel_fn(x1, None))
        out[f"{name}/expr"] = np.array(expr)
        out[f"{name}/x1"], out[f"{name}/x2"] = x1, x2
        for tag, k in (("12", k12), ("11", k11)):
            out[f"{name}/nngp{tag}"] = np.asarray(k.nngp)
            out[f"{name}/ntk{tag}"] = np.asarray(k.ntk)
        out[f"{name}/cov1"] = np.asarray(k12.cov1)
        out[f"{name}/diagonal"] = np.array(bool(k12.diagonal_spatial))
        print(f"{name:24s} nngp {tuple(k12.nngp.shape)} diagonal={bool(k12.diagonal_spatial)}")
    np.savez_compressed(os.path.join(HERE, "spatial.npz"), **out)


if __name__ == "__main__":
    main()
