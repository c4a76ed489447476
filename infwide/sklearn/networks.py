"""Ready networks by name, for the estimators and ``infwide classify``.

All come from ``infwide.models`` with fixed hyper-parameters: ``fc`` (inputs flattened
first), ``cnn`` and ``cnn-gap`` (images ``(N, H, W, C)`` or sequences ``(N, L, C)``), and
``myrtle5``, ``myrtle7``, ``myrtle10``, ``wrn`` (2-d images).
"""
import math

from ..stax import Layer

__all__ = ["NETWORKS", "SPATIAL_NETWORKS", "build_network", "is_spatial_network"]

SPATIAL_NETWORKS = ("cnn", "cnn-gap", "myrtle5", "myrtle7", "myrtle10", "wrn")
NETWORKS = ("fc",) + SPATIAL_NETWORKS


def fc():
    """Two hidden ReLU layers and a linear readout (``infwide.models.FC(2)``, W_std = sqrt(2),
    b_std = 0.05)."""
    from ..models import FC
    return FC(2, W_std=math.sqrt(2.0), b_std=0.05)


def cnn(n_spatial, readout="flatten"):
    """Three 'SAME' convolutions (filter 3 along each spatial axis) with ReLU, read out by
    Flatten (``cnn``: only spatial diagonals are computed) or by global average pooling
    (``cnn-gap``: translation invariant, needs the full spatial covariance, so it costs about
    (H W) times more): ``infwide.models.CNN(3, readout)``."""
    from ..models import CNN
    return CNN(3, readout=readout, filter_shape=(3,) * n_spatial, W_std=math.sqrt(2.0),
               b_std=0.05)


def _image_model(name, n_spatial):
    """Myrtle-5/7/10 (Shankar et al. 2020) or WRN-16-1: 2-d images only."""
    from ..models import Myrtle, WideResNet
    if n_spatial != 2:
        raise ValueError(f"network {name!r} needs 2-d images (N, H, W, C); the inputs have "
                         f"{n_spatial} spatial axes. Use 'cnn' or 'fc'.")
    if name.startswith("myrtle"):
        return Myrtle(depth=int(name[len("myrtle"):]), out_dim=1)
    return WideResNet(16, k=1, out_dim=1)


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
    if name in ("cnn", "cnn-gap"):
        return cnn(n_spatial, "flatten" if name == "cnn" else "gap")
    return _image_model(name, n_spatial)
