"""scikit-learn's bundled handwritten digits (UCI optdigits test part: 1797 images of 8x8
pixels with values 0..16, ten classes).

infwide ships no data: the file ``sklearn/datasets/data/digits.csv.gz`` that scikit-learn
installs is read directly (64 pixel columns, then the label), so scikit-learn must be
installed (``pip install "infwide[sklearn]"``) but is not imported.
"""
import gzip
import importlib.util
import os

import numpy as np

from ._dataset import Dataset, check_labels, split

__all__ = ["load_digits", "digits_path"]

N_DIGITS = 1797


def digits_path():
    """Path of scikit-learn's bundled ``digits.csv.gz``; an OSError says how to get it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise OSError('the digits data set is read from scikit-learn\'s bundled copy, and '
                      'scikit-learn is not installed: `pip install "infwide[sklearn]"` '
                      '(or use --data mnist1d, which is generated locally).')
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data",
                        "digits.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scikit-learn is installed but its digits file {path} is missing.")
    return path


def load_digits(n_train=None, n_test=None, seed=0, path=None):
    """The 1797 digits as ``(N, 8, 8, 1)`` float64 images (values 0..16) and labels 0..9.

    The examples are shuffled with ``seed`` and split into training and test sets: the test
    set is the last ``n_test`` examples of the permutation (``None``: 797, leaving 1000 for
    training); the training set the first ``n_train`` of the rest.
    """
    path = digits_path() if path is None else path
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", ndmin=2)
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"digits file {path} could not be read ({e}).") from None
    if table.shape[1] != 65:
        raise ValueError(f"digits file {path} has {table.shape[1]} columns; expected 65 "
                         "(64 pixels and the label).")
    y = check_labels(table[:, -1], 10, f"digits file {path}")
    x = table[:, :-1].reshape(-1, 8, 8, 1)
    n_test = 797 if n_test is None else n_test
    x_tr, y_tr, x_te, y_te = split(x, y, n_test, seed, "digits")
    return Dataset("digits", x_tr, y_tr, x_te, y_te, 10).subset(n_train, None)
