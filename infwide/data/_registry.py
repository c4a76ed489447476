"""``load_dataset(spec)``: one string names any data set the loaders read (the CLI's --data)."""
import os

from .cifar10 import load_cifar10
from .digits import load_digits
from .files import load_file
from .idx import load_fashion_mnist, load_mnist
from .mnist1d import make_mnist1d

__all__ = ["load_dataset", "DATASET_SPECS"]

DATASET_SPECS = ("digits", "mnist1d", "cifar10:DIR", "mnist:DIR", "fashion-mnist:DIR",
                 "FILE.npz", "FILE.csv")
_FOLDER_LOADERS = {"cifar10": load_cifar10, "mnist": load_mnist,
                   "fashion-mnist": load_fashion_mnist, "fashion_mnist": load_fashion_mnist}


def load_dataset(spec, n_train=None, n_test=None, seed=0):
    """Load the data set named by ``spec``.

    ``'digits'`` (scikit-learn's bundled copy; ``seed`` shuffles the split), ``'mnist1d'``
    (generated; ``seed`` is added to the reference seed 42 so that 0 gives the reference data
    set), ``'cifar10:DIR'``, ``'mnist:DIR'``, ``'fashion-mnist:DIR'`` (files in DIR), or the
    path of a ``.npz``/``.csv`` file. Raises ValueError listing the valid names otherwise.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data: expected one of {', '.join(DATASET_SPECS)}; got {spec!r}.")
    name, sep, folder = spec.partition(":")
    key = name.lower()
    if key == "digits" and not sep:
        return load_digits(n_train, n_test, seed=seed)
    if key == "mnist1d" and not sep:
        return make_mnist1d(n_train, n_test, seed=42 + int(seed))
    if key in _FOLDER_LOADERS and sep:
        if not folder:
            raise ValueError(f"data: {name}:DIR needs a folder after the colon; got {spec!r}.")
        return _FOLDER_LOADERS[key](os.path.expanduser(folder), n_train, n_test)
    if os.path.splitext(spec)[1].lower() in (".npz", ".csv"):
        return load_file(os.path.expanduser(spec), n_train, n_test, seed=seed)
    raise ValueError(f"data: unknown data set {spec!r}; expected one of "
                     f"{', '.join(DATASET_SPECS)}.")
