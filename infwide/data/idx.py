"""MNIST and Fashion-MNIST from their IDX files, gzipped or not (LeCun et al. 1998;
Xiao et al. 2017 use the same format and file names).

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number
of dimensions; then one big-endian int32 per dimension; then the values, big-endian,
row-major. MNIST images are ``0x00000803`` (N x 28 x 28 unsigned bytes), labels
``0x00000801`` (N unsigned bytes).
"""
import gzip
import os
import zlib

import numpy as np

from ._dataset import Dataset, check_labels, file_size

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "MNIST_FILES"]

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def _read_bytes(path):
    """The file's bytes, decompressed when it is gzipped (detected by its magic bytes)."""
    file_size(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"IDX file {path} is a corrupt or truncated gzip archive ({e}).") from None


def read_idx(path, ndim=None):
    """Read an IDX file (optionally gzipped) into a NumPy array in native byte order.

    Checks the magic number (and, when ``ndim`` is given, the number of dimensions) and that
    the payload has exactly the size the header announces; a ValueError names the file, the
    size found and the size expected.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(f"IDX file {path} has no IDX magic number (got bytes {raw[:4].hex()}; "
                         "expected 0000 followed by a type code such as 08 and the number of "
                         "dimensions, e.g. 00000803 for images, 00000801 for labels).")
    dtype, nd = np.dtype(_TYPES[raw[2]]), raw[3]
    if ndim is not None and nd != ndim:
        raise ValueError(f"IDX file {path} has {nd} dimension(s) (magic {raw[:4].hex()}); "
                         f"expected {ndim}.")
    header = 4 + 4 * nd
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header: {len(raw)} bytes, "
                         f"expected at least {header}.")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", nd, 4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"IDX file {path} holds {len(raw)} bytes (uncompressed); its header "
                         f"announces shape {dims} of {dtype.itemsize}-byte values, so {expected} "
                         "bytes were expected: the file is truncated or corrupt.")
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _locate(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"IDX file {os.path.join(folder, stem)}[.gz] does not exist; "
                            f"expected the four files {', '.join(MNIST_FILES.values())} "
                            "(gzipped or not) in that folder.")


def _pair(folder, kind, n, name):
    x_path = _locate(folder, MNIST_FILES[kind + "_images"])
    y_path = _locate(folder, MNIST_FILES[kind + "_labels"])
    x = read_idx(x_path, ndim=3)
    y = read_idx(y_path, ndim=1)
    if len(x) != len(y):
        raise ValueError(f"{name}: {x_path} holds {len(x)} images but {y_path} holds {len(y)} "
                         "labels; expected the same number.")
    y = check_labels(y, 10, f"{name} labels {y_path}")
    if n is not None:
        x, y = x[:n], y[:n]
    return x[..., None], y


def load_mnist(folder, n_train=None, n_test=None, name="mnist", classes=None):
    """Load MNIST (or any data set in MNIST's four IDX files) from ``folder``.

    Images are returned as uint8 ``(N, 28, 28, 1)``; labels as int64 class indices 0..9.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name} folder {folder} does not exist.")
    x_train, y_train = _pair(folder, "train", n_train, name)
    x_test, y_test = _pair(folder, "test", n_test, name)
    return Dataset(name, x_train, y_train, x_test, y_test, 10, classes).subset(n_train, n_test)


def load_fashion_mnist(folder, n_train=None, n_test=None):
    """Load Fashion-MNIST from ``folder`` (same file names and format as MNIST)."""
    return load_mnist(folder, n_train, n_test, name="fashion-mnist", classes=FASHION_CLASSES)
