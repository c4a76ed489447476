"""The ``Dataset`` record every loader returns, and the checks they share."""
import dataclasses
import os
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["Dataset", "check_labels", "take", "split", "file_size"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Training and test inputs with integer class labels.

    ``x_train``/``x_test`` are batch-first and channels-last: images are ``(N, H, W, C)``,
    sequences ``(N, L, C)``, feature tables ``(N, F)``. ``y_train``/``y_test`` hold class
    indices ``0 .. num_classes - 1`` (int64). ``classes`` holds the original label of each
    class index (for files whose labels are not already ``0 .. K-1``).
    """
    name: str
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    num_classes: int
    classes: Optional[Tuple] = None

    @property
    def input_shape(self):
        """Shape of one input (no batch axis)."""
        return tuple(self.x_train.shape[1:])

    def subset(self, n_train=None, n_test=None):
        """The first ``n_train`` training and ``n_test`` test examples (``None``: all).

        Raises a ValueError naming the data set when more are asked for than it holds.
        """
        return dataclasses.replace(
            self, x_train=take(self.x_train, n_train, f"{self.name}: n_train"),
            y_train=take(self.y_train, n_train, f"{self.name}: n_train"),
            x_test=take(self.x_test, n_test, f"{self.name}: n_test"),
            y_test=take(self.y_test, n_test, f"{self.name}: n_test"))

    def __repr__(self):
        return (f"Dataset({self.name!r}, x_train={self.x_train.shape}, x_test={self.x_test.shape}, "
                f"num_classes={self.num_classes})")


def take(a, n, what):
    """``a[:n]``, validating that ``n`` is a positive integer no larger than ``len(a)``."""
    if n is None:
        return a
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n!r}.")
    if n > len(a):
        raise ValueError(f"{what} = {n} is larger than the {len(a)} examples available.")
    return a[:int(n)]


def check_labels(y, num_classes, source):
    """Return ``y`` as int64 after checking every label lies in ``0 .. num_classes - 1``."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
        raise ValueError(f"{source}: label {int(y[bad])} at position {bad} is out of range; "
                         f"expected class indices 0..{num_classes - 1}.")
    return y.astype(np.int64)


def split(x, y, n_test, seed, name):
    """Shuffle ``(x, y)`` with ``seed`` and hold out the last ``n_test`` examples as the test
    set (the permutation is fixed by ``seed``, so the split is reproducible)."""
    n = len(y)
    if isinstance(n_test, float) and 0 < n_test < 1:
        n_test = int(round(n * n_test))
    if int(n_test) != n_test or not 0 < n_test < n:
        raise ValueError(f"{name}: the test split must hold between 1 and {n - 1} of the {n} "
                         f"examples; got {n_test!r}.")
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[:n - int(n_test)], perm[n - int(n_test):]
    return x[tr], y[tr], x[te], y[te]


def file_size(path):
    """Size of ``path`` in bytes, or an OSError naming it when it is missing."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file {path} does not exist.")
    return os.path.getsize(path)
