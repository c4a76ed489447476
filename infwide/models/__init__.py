"""Ready architectures, each a ``stax`` Layer usable finite (``init_fn``/``apply_fn``) and
infinite (``kernel_fn``): ``FC``, ``CNN``, ``Myrtle`` (Shankar et al. 2020) and ``WideResNet``
(Zagoruyko & Komodakis 2016, in Neural Tangents' infinite-width form)."""
from ._simple import FC, CNN
from .myrtle import Myrtle
from .wide_resnet import WideResNet, WideResnetBlock, WideResnetGroup

__all__ = ["FC", "CNN", "Myrtle", "WideResNet", "WideResnetBlock", "WideResnetGroup"]
