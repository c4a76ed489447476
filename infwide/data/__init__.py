"""Data sets and preprocessing for kernel regression and classification.

Loaders return a ``Dataset`` (training and test inputs, batch-first and channels-last, with
integer class labels); nothing is downloaded and nothing is unpickled:

- ``load_cifar10(DIR)``: CIFAR-10's binary batches;
- ``load_mnist(DIR)``, ``load_fashion_mnist(DIR)``: IDX files, gzipped or not;
- ``load_digits()``: scikit-learn's bundled 8x8 digits (needs scikit-learn installed);
- ``make_mnist1d()``: MNIST-1D generated from its templates, seeded;
- ``load_file(PATH)``: any ``.npz`` (``x``, ``y``) or ``.csv`` (label last);
- ``load_dataset(SPEC)``: any of these by name, as the CLI's ``--data``.

Preprocessing: ``standardize``, ``normalize_per_image``, ``zca_whiten`` (regularised, Lee et
al. 2020) and ``one_hot`` (centred targets).
"""
from ._dataset import Dataset
from ._registry import DATASET_SPECS, load_dataset
from .cifar10 import load_cifar10, read_cifar10_batch
from .digits import load_digits
from .files import load_file
from .idx import load_fashion_mnist, load_mnist, read_idx
from .mnist1d import MNIST1D_DEFAULTS, make_mnist1d, mnist1d_templates
from .preprocess import normalize_per_image, one_hot, standardize, zca_whiten, zca_whitening_matrix

__all__ = ["Dataset", "load_dataset", "DATASET_SPECS", "load_cifar10", "read_cifar10_batch",
           "load_digits", "load_file", "load_mnist", "load_fashion_mnist", "read_idx",
           "make_mnist1d", "mnist1d_templates", "MNIST1D_DEFAULTS", "standardize",
           "normalize_per_image", "zca_whitening_matrix", "zca_whiten", "one_hot"]
