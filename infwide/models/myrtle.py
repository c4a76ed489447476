"""Myrtle networks (Shankar et al. 2020, "Neural Kernels Without Tangents", Fig. 1), in the
form of Neural Tangents' Myrtle notebook.

Three stages of ``Conv(3x3, 'SAME') -> ReLU`` blocks, ``[2, 1, 1]``, ``[2, 2, 2]`` or
``[3, 3, 3]`` of them for depth 5, 7 or 10, separated by 2x2 average pools (stride 2), then
a global average and ``Dense(out_dim)``. The notebook's tail is three more 2x2 pools and
``Flatten``: on the 8x8 maps of 32x32 inputs that is exactly the global average, which this
version uses (``final='gap'``) so that any image size works; ``final='pools'`` keeps the
notebook's layers verbatim (32x32 inputs).
"""
from ..stax import AvgPool, Conv, Dense, Flatten, GlobalAvgPool, serial
from ._checks import activation_layer, check_int

__all__ = ["Myrtle"]

_BLOCKS = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}


def Myrtle(depth=5, width=128, W_std=2 ** 0.5, b_std=0.0, activation=None, out_dim=10,
           final="gap"):
    """Myrtle-``depth`` (5, 7 or 10) with ``width`` channels per convolution."""
    if depth not in _BLOCKS:
        raise ValueError(f"Myrtle: `depth` must be 5, 7 or 10, got {depth!r}.")
    if final not in ("gap", "pools"):
        raise ValueError(f"Myrtle: `final` must be 'gap' or 'pools', got {final!r}.")
    width = check_int(width, "width", "Myrtle", 1)
    act = activation_layer(activation, "Myrtle")
    conv = lambda: Conv(width, (3, 3), padding="SAME", W_std=W_std, b_std=b_std)
    layers = []
    for stage, n in enumerate(_BLOCKS[depth]):
        layers += [conv(), act] * n
        if stage < 2:
            layers.append(AvgPool((2, 2), strides=(2, 2)))
    if final == "gap":
        layers.append(GlobalAvgPool())
    else:
        layers += [AvgPool((2, 2), strides=(2, 2))] * 3 + [Flatten()]
    layers.append(Dense(out_dim, W_std, b_std))
    return serial(*layers)
