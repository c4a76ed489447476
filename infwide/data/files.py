"""Features and labels from any ``.npz`` (arrays ``x`` and ``y``, optionally ``x_test`` and
``y_test``) or ``.csv`` file (one example a row, the last column the label).

Labels must be integers (class labels); they are mapped to class indices ``0 .. K-1`` in
sorted order and the original values kept in ``Dataset.classes``. Without an explicit test
set the examples are shuffled with ``seed`` and the last ``n_test`` held out.
"""
import os
import zipfile

import numpy as np

from ._dataset import Dataset, file_size, split

__all__ = ["load_file"]


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"data file {path} is not a readable .npz archive ({e}).") from None
    for k in ("x", "y"):
        if k not in arrays:
            raise ValueError(f"data file {path} holds arrays {sorted(arrays)}; expected 'x' "
                             "(features) and 'y' (labels), optionally 'x_test' and 'y_test'.")
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return arrays["x"], arrays["y"], test


def _read_csv(path):
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError:
        try:  # one header line
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)
        except ValueError as e:
            raise ValueError(f"data file {path} is not a numeric CSV table ({e}).") from None
    if table.shape[1] < 2 or len(table) < 2:
        raise ValueError(f"data file {path} has shape {table.shape}; expected at least two rows "
                         "and two columns (features, then the label in the last column).")
    return table[:, :-1], table[:, -1], None


def _class_indices(y, classes, path):
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"data file {path}: labels must be integer class labels; found "
                         f"non-integer values such as {y[~(y == np.round(y))][:1]}.")
    idx = np.searchsorted(classes, y)
    idx = np.minimum(idx, len(classes) - 1)
    if not np.array_equal(classes[idx], y):
        bad = y[classes[idx] != y][0]
        raise ValueError(f"data file {path}: test label {bad} is not among the training "
                         f"labels {classes.tolist()}.")
    return idx.astype(np.int64)


def load_file(path, n_train=None, n_test=None, seed=0):
    """Load a ``.npz`` or ``.csv`` file of features and integer labels as a ``Dataset``."""
    file_size(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        x, y, test = _read_npz(path)
    elif ext == ".csv":
        x, y, test = _read_csv(path)
    else:
        raise ValueError(f"data file {path}: unknown extension {ext!r}; expected .npz or .csv.")
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"data file {path}: {len(x)} inputs but {len(y)} labels.")
    if x.ndim < 2 or x.dtype.kind not in "biuf":
        raise ValueError(f"data file {path}: 'x' must be a numeric array of shape (N, features...), "
                         f"got {x.dtype} {x.shape}.")
    classes = np.unique(y)
    y = _class_indices(y, classes, path)
    if test is None:
        n_hold = max(1, len(y) // 5) if n_test is None else n_test
        x_tr, y_tr, x_te, y_te = split(x, y, n_hold, seed, f"data file {path}")
    else:
        x_tr, y_tr = x, y
        x_te, y_te = np.asarray(test[0]), _class_indices(np.asarray(test[1]).reshape(-1), classes, path)
        if x_te.shape[1:] != x.shape[1:] or len(x_te) != len(y_te):
            raise ValueError(f"data file {path}: x_test {x_te.shape} / y_test {y_te.shape} do not "
                             f"match x {x.shape}.")
    name = os.path.basename(path)
    data = Dataset(name, x_tr, y_tr, x_te, y_te, len(classes), tuple(classes.tolist()))
    return data.subset(n_train, n_test if test is not None else None)
