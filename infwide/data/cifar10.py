"""CIFAR-10 from its binary version (Krizhevsky 2009; the ``cifar-10-binary`` archive).

Each of ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin`` is a sequence of
3073-byte records: one label byte (0..9) followed by 3072 pixel bytes, the 1024 red, 1024
green and 1024 blue values of a 32x32 image in row-major order. A full batch holds 10000
records (30,730,000 bytes). The files are read as raw bytes; nothing is unpickled.
"""
import os

import numpy as np

from ._dataset import Dataset, check_labels, file_size

__all__ = ["load_cifar10", "read_cifar10_batch", "CIFAR10_CLASSES", "RECORD_BYTES"]

RECORD_BYTES = 1 + 3 * 32 * 32
BATCH_RECORDS = 10000
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def read_cifar10_batch(path, max_records=None):
    """Read one binary batch: ``(images, labels)``, images ``(N, 32, 32, 3)`` uint8 (NHWC).

    Only the first ``max_records`` records are read when it is given. A file whose size is
    not a whole number of records (truncated or not a CIFAR-10 batch) raises a ValueError
    naming the file, its size and the size expected.
    """
    size = file_size(path)
    if size == 0 or size % RECORD_BYTES:
        raise ValueError(
            f"CIFAR-10 batch {path} has {size} bytes; expected a whole number of "
            f"{RECORD_BYTES}-byte records (1 label byte + 3072 pixel bytes), e.g. "
            f"{BATCH_RECORDS * RECORD_BYTES} bytes for a full batch of {BATCH_RECORDS}: "
            "the file is truncated or not a CIFAR-10 binary batch.")
    n = size // RECORD_BYTES if max_records is None else min(size // RECORD_BYTES, max_records)
    raw = np.fromfile(path, dtype=np.uint8, count=n * RECORD_BYTES).reshape(n, RECORD_BYTES)
    labels = check_labels(raw[:, 0], 10, f"CIFAR-10 batch {path}")
    images = raw[:, 1:].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _find_folder(folder):
    """Accept the folder holding the batches or the folder the archive was unpacked into."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"CIFAR-10 folder {folder} does not exist.")
    for cand in (folder, os.path.join(folder, "cifar-10-batches-bin")):
        if os.path.isfile(os.path.join(cand, TEST_FILE)):
            return cand
    raise FileNotFoundError(
        f"CIFAR-10 folder {folder} holds no {TEST_FILE}; expected the binary version's files "
        f"{', '.join(TRAIN_FILES)} and {TEST_FILE} (the Python/pickle version is not read).")


def load_cifar10(folder, n_train=None, n_test=None):
    """Load CIFAR-10 from the binary batches in ``folder``; pixel values as uint8 NHWC.

    Reads the training batches in order until ``n_train`` images are gathered (all present
    batches when ``None``) and the first ``n_test`` test images. Raises FileNotFoundError
    for a missing folder or file and ValueError for a truncated or corrupt file.
    """
    folder = _find_folder(folder)
    xs, ys, have = [], [], 0
    for name in TRAIN_FILES:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            if have == 0:
                raise FileNotFoundError(f"CIFAR-10 training batch {path} does not exist.")
            break
        x, y = read_cifar10_batch(path, None if n_train is None else n_train - have)
        xs.append(x), ys.append(y)
        have += len(y)
        if n_train is not None and have >= n_train:
            break
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    x_test, y_test = read_cifar10_batch(os.path.join(folder, TEST_FILE), n_test)
    data = Dataset("cifar10", x_train, y_train, x_test, y_test, 10, CIFAR10_CLASSES)
    return data.subset(n_train, n_test)
