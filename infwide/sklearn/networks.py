"""Ready networks by name, for the estimators and ``infwide classify``.

``fc`` is built here from ``stax`` (the input is flattened first). The convolutional
architectures (``cnn``, ``myrtle5``, ``myrtle7``, ``myrtle10``, ``wrn``) come from
``infwide.models``; they need inputs with spatial axes (images ``(N, H, W, C)`` or sequences
``(N, L, C)``).
"""
import importlib
import math

from ..stax import Dense, Layer, Relu, serial

__all__ = ["NETWORKS", "SPATIAL_NETWORKS", "build_network", "is_spatial_network"]

SPATIAL_NETWORKS = ("cnn", "myrtle5", "myrtle7", "myrtle10", "wrn")
NETWORKS = ("fc",) + SPATIAL_NETWORKS


def fc(depth=2, W_std=math.sqrt(2.0), b_std=0.05):
    """A fully-connected ReLU network: ``depth`` hidden layers, then a linear readout.

    The width (512) only matters for the finite network; the kernels are its infinite limit.
    """
    if int(depth) != depth or depth < 0:
        raise ValueError(f"fc: `depth` must be an integer >= 0, got {depth!r}.")
    layers = []
    for _ in range(int(depth)):
        layers += [Dense(512, W_std=W_std, b_std=b_std), Relu()]
    return serial(*layers, Dense(1, W_std=W_std, b_std=b_std))


def _model(name, n_spatial):
    """The convolutional architecture ``name`` from ``infwide.models`` for inputs with
    ``n_spatial`` spatial axes."""
    try:
        models = importlib.import_module("..models", __package__)
    except ImportError as e:
        raise ValueError(f"network {name!r} comes from infwide.models, which could not be "
                         f"imported ({e}).") from None
    if name == "cnn":
        return models.CNN(n_spatial=n_spatial) if n_spatial != 2 else models.CNN()
    if name.startswith("myrtle"):
        return models.Myrtle(depth=int(name[len("myrtle"):]))
    return models.WideResNet()


def is_spatial_network(network):
    """Whether ``network`` (a name) needs inputs with spatial axes."""
    return isinstance(network, str) and network.lower() in SPATIAL_NETWORKS


def build_network(network, n_spatial=2):
    """A ``Layer`` for ``network``: a name from ``NETWORKS``, or a ``Layer`` returned as is.

    ``n_spatial`` is the number of spatial axes of the inputs (2 for images, 1 for sequences)
    for the convolutional architectures. Unknown names raise a ValueError listing the valid
    ones.
    """
    if isinstance(network, Layer):
        return network
    if not isinstance(network, str) or network.lower() not in NETWORKS:
        raise ValueError(f"network: unknown architecture {network!r}; expected one of "
                         f"{', '.join(NETWORKS)} or an infwide.stax Layer.")
    name = network.lower()
    if name == "fc":
        return fc()
    return _model(name, n_spatial)
