"""Neural Tangents kernels of the ready architectures (run with the NT oracle's python).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_models.py

The architectures are written here with NT's own stax, following NT's README (WideResnet)
and its Myrtle notebook; tests/models/test_models.py builds the same ones with ``infwide.models``
(the stored ``expr``) and compares. Writes tests/nt_fixtures/models.npz.
"""
import functools
import os

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def fc(depth, W_std, b_std, out_dim):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std, b_std), stax.Relu()]
    return stax.serial(*layers, stax.Dense(out_dim, W_std, b_std))


def cnn(depth, readout, filter_shape, padding, W_std, b_std):
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(64, filter_shape, None, padding, W_std, b_std), stax.Relu()]
    layers.append(stax.Flatten() if readout == "flatten" else stax.GlobalAvgPool())
    return stax.serial(*layers, stax.Dense(1, W_std, b_std))


def myrtle(depth, W_std=np.sqrt(2.0), b_std=0.0, tail="gap"):
    """NT's Myrtle notebook; ``tail='gap'`` replaces its last three 2x2 pools and Flatten."""
    layer_factor = {5: [2, 1, 1], 7: [2, 2, 2], 10: [3, 3, 3]}[depth]
    conv = functools.partial(stax.Conv, W_std=W_std, b_std=b_std, padding="SAME")
    layers = [conv(1, (3, 3)), stax.Relu()] * layer_factor[0]
    layers += [stax.AvgPool((2, 2), strides=(2, 2))]
    layers += [conv(1, (3, 3)), stax.Relu()] * layer_factor[1]
    layers += [stax.AvgPool((2, 2), strides=(2, 2))]
    layers += [conv(1, (3, 3)), stax.Relu()] * layer_factor[2]
    if tail == "gap":
        layers += [stax.GlobalAvgPool()]
    else:
        layers += [stax.AvgPool((2, 2), strides=(2, 2))] * 3 + [stax.Flatten()]
    layers += [stax.Dense(10, W_std, b_std)]
    return stax.serial(*layers)


def wrn_block(channels, strides=(1, 1), channel_mismatch=False, ln=None):
    norm = [stax.LayerNorm(axis=ln)] if ln is not None else []
    main = stax.serial(*norm, stax.Relu(), stax.Conv(channels, (3, 3), strides, padding="SAME"),
                       *norm, stax.Relu(), stax.Conv(channels, (3, 3), padding="SAME"))
    shortcut = (stax.Conv(channels, (3, 3), strides, padding="SAME") if channel_mismatch
                else stax.Identity())
    return stax.serial(stax.FanOut(2), stax.parallel(main, shortcut), stax.FanInSum())


def wrn_group(n, channels, strides=(1, 1), ln=None):
    blocks = [wrn_block(channels, strides, channel_mismatch=True, ln=ln)]
    blocks += [wrn_block(channels, (1, 1), ln=ln) for _ in range(n - 1)]
    return stax.serial(*blocks)


def wrn(block_size, k, num_classes, ln=None, tail="gap", pool=8):
    """NT's README WideResnet; ``tail='gap'`` for its AvgPool((8, 8)) + Flatten."""
    readout = [stax.GlobalAvgPool()] if tail == "gap" else [stax.AvgPool((pool, pool)),
                                                            stax.Flatten()]
    return stax.serial(stax.Conv(16, (3, 3), padding="SAME"),
                       wrn_group(block_size, int(16 * k), ln=ln),
                       wrn_group(block_size, int(32 * k), (2, 2), ln=ln),
                       wrn_group(block_size, int(64 * k), (2, 2), ln=ln),
                       *readout, stax.Dense(num_classes, 1., 0.))


# name: (NT network, infwide expression, input shape without batch, n1, n2 or 0 for x2=None)
CASES = {
    "fc": (fc(3, 1.5, 0.1, 3), "models.FC(3, W_std=1.5, b_std=0.1, out_dim=3)", (7,), 3, 2),
    "cnn_flatten": (cnn(2, "flatten", (3, 3), "SAME", 1.4, 0.1),
                    "models.CNN(2, 'flatten', W_std=1.4, b_std=0.1)", (6, 6, 3), 2, 2),
    "cnn_gap": (cnn(3, "gap", (3, 2), "CIRCULAR", 1.3, None),
                "models.CNN(3, 'gap', filter_shape=(3, 2), padding='CIRCULAR', W_std=1.3)",
                (5, 6, 2), 2, 2),
    "myrtle5": (myrtle(5), "models.Myrtle(5)", (8, 8, 3), 2, 2),
    "myrtle7": (myrtle(7, 1.3, 0.1), "models.Myrtle(7, W_std=1.3, b_std=0.1)", (8, 8, 2), 2, 0),
    "myrtle10": (myrtle(10), "models.Myrtle(10)", (12, 12, 1), 1, 2),
    "myrtle5_notebook_32": (myrtle(5, tail="pools"), "models.Myrtle(5, final='pools')",
                            (32, 32, 1), 2, 0),
    "wrn10": (wrn(1, 1, 10), "models.WideResNet(10, 1)", (8, 8, 3), 2, 2),
    "wrn16_layernorm": (wrn(2, 0.5, 2, ln=(1, 2, 3)),
                        "models.WideResNet(16, 0.5, out_dim=2, layer_norm=(1, 2, 3))",
                        (4, 4, 2), 2, 0),
    "wrn10_readme_tail": (wrn(1, 1, 10, tail="pools", pool=2), "models.WideResNet(10, 1)",
                          (8, 8, 2), 2, 0),
}


def main():
    rng = np.random.default_rng(7)
    out = {}
    for name, (net, expr, shape, n1, n2) in CASES.items():
        x1 = rng.standard_normal((n1,) + shape)
        x2 = rng.standard_normal((n2,) + shape) if n2 else None
        k = net[2](x1, x2, ("nngp", "ntk"))
        out[f"{name}/expr"] = np.array(expr)
        out[f"{name}/x1"] = x1
        if x2 is not None:
            out[f"{name}/x2"] = x2
        out[f"{name}/nngp"], out[f"{name}/ntk"] = np.asarray(k.nngp), np.asarray(k.ntk)
        print(f"{name:20s} {tuple(k.nngp.shape)}")
    np.savez_compressed(os.path.join(HERE, "models.npz"), **out)


if __name__ == "__main__":
    main()
