"""Fully-connected and plain convolutional networks."""
from ..stax import Conv, Dense, Flatten, GlobalAvgPool, serial
from ._checks import activation_layer, check_int

__all__ = ["FC", "CNN"]


def FC(depth, width=512, W_std=2 ** 0.5, b_std=None, activation=None, out_dim=1,
       parameterization="ntk"):
    """``depth`` hidden layers ``Dense(width) -> activation``, then ``Dense(out_dim)``.

    ``activation`` is a stax layer (``Relu()`` by default). In the 'ntk' parameterization the
    kernel does not depend on ``width``.
    """
    depth = check_int(depth, "depth", "FC", 0)
    act = activation_layer(activation, "FC")
    layers = []
    for _ in range(depth):
        layers += [Dense(width, W_std, b_std, parameterization=parameterization), act]
    layers.append(Dense(out_dim, W_std, b_std, parameterization=parameterization))
    return serial(*layers)


def CNN(depth, readout="flatten", channels=64, filter_shape=(3, 3), strides=None,
        padding="SAME", W_std=2 ** 0.5, b_std=None, activation=None, out_dim=1,
        parameterization="ntk"):
    """``depth`` blocks ``Conv(channels, filter_shape, strides, padding) -> activation``, a
    readout (``'flatten'``: only spatial diagonals are ever computed; ``'gap'``: global average
    pooling, which needs the full spatial covariance) and ``Dense(out_dim)``."""
    depth = check_int(depth, "depth", "CNN", 1)
    if readout not in ("flatten", "gap"):
        raise ValueError(f"CNN: `readout` must be 'flatten' or 'gap', got {readout!r}.")
    act = activation_layer(activation, "CNN")
    layers = []
    for _ in range(depth):
        layers += [Conv(channels, filter_shape, strides, padding, W_std, b_std,
                        parameterization=parameterization), act]
    layers.append(Flatten() if readout == "flatten" else GlobalAvgPool())
    layers.append(Dense(out_dim, W_std, b_std, parameterization=parameterization))
    return serial(*layers)
