"""infwide.data: loaders on small files written here in the real formats, MNIST-1D, and the
preprocessing steps."""
import gzip
import os

import numpy as np
import pytest

from infwide import data


# -- CIFAR-10 binary -------------------------------------------------------------------------
def _cifar_records(labels, seed):
    """Records in the binary layout: label byte, 1024 R, 1024 G, 1024 B (row-major)."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    planes = imgs.transpose(0, 3, 1, 2).reshape(len(labels), 3072)
    rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1)
    return rec.tobytes(), imgs


@pytest.fixture
def cifar_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    b1, i1 = _cifar_records([0, 1, 2, 3, 4], 0)
    b2, i2 = _cifar_records([5, 6, 7, 8, 9, 0], 1)
    bt, it = _cifar_records([9, 8, 7], 2)
    (folder / "data_batch_1.bin").write_bytes(b1)
    (folder / "data_batch_2.bin").write_bytes(b2)
    (folder / "test_batch.bin").write_bytes(bt)
    return tmp_path, np.concatenate([i1, i2]), it


def test_cifar10_reads_binary_layout(cifar_dir):
    root, train_imgs, test_imgs = cifar_dir
    d = data.load_cifar10(str(root))      # the unpacked archive's parent folder works too
    assert d.x_train.shape == (11, 32, 32, 3) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train, train_imgs)
    np.testing.assert_array_equal(d.x_test, test_imgs)
    np.testing.assert_array_equal(d.y_train, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
    np.testing.assert_array_equal(d.y_test, [9, 8, 7])
    assert d.num_classes == 10 and d.classes[0] == "airplane"


def test_cifar10_subset_reads_only_what_is_needed(cifar_dir):
    root, train_imgs, _ = cifar_dir
    d = data.load_cifar10(str(root / "cifar-10-batches-bin"), n_train=7, n_test=2)
    np.testing.assert_array_equal(d.x_train, train_imgs[:7])
    assert d.x_test.shape[0] == 2
    with pytest.raises(ValueError, match="n_train = 12 is larger than the 11"):
        data.load_cifar10(str(root), n_train=12)


def test_cifar10_truncated_file_names_file_and_size(cifar_dir):
    root, _, _ = cifar_dir
    path = root / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"data_batch_2\.bin has 18338 bytes.*3073-byte records"
                                         r".*30730000"):
        data.load_cifar10(str(root))


def test_cifar10_bad_label_and_missing_files(tmp_path, cifar_dir):
    root, _, _ = cifar_dir
    bad, _ = _cifar_records([3, 10], 3)
    (root / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(bad)
    with pytest.raises(ValueError, match=r"test_batch\.bin: label 10 at position 1 is out of range"):
        data.load_cifar10(str(root))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_cifar10(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no test_batch.bin"):
        data.load_cifar10(str(empty))


# -- IDX ---------------------------------------------------------------------------------------
def _idx_bytes(arr, code):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    return head + arr.astype(dt).tobytes()


def _write_mnist(folder, n_train=6, n_test=4, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for name, a in arrays.items():
        raw = _idx_bytes(a, 0x08)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_gzipped_or_not(tmp_path, gz):
    arrays = _write_mnist(tmp_path, gz=gz)
    d = data.load_mnist(str(tmp_path))
    assert d.x_train.shape == (6, 28, 28, 1) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    f = data.load_fashion_mnist(str(tmp_path), n_train=2, n_test=3)
    assert f.name == "fashion-mnist" and f.x_train.shape[0] == 2 and f.x_test.shape[0] == 3
    assert f.classes[9] == "Ankle boot"


def test_read_idx_other_types_big_endian(tmp_path):
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4) * 1000
    p = tmp_path / "a.idx"
    p.write_bytes(_idx_bytes(a, 0x0B))
    np.testing.assert_array_equal(data.read_idx(str(p)), a)
    f = np.linspace(-1, 1, 5).astype(np.float32)
    p.write_bytes(gzip.compress(_idx_bytes(f, 0x0D)))
    np.testing.assert_array_equal(data.read_idx(str(p)), f)


def test_idx_bad_magic_truncated_and_corrupt(tmp_path):
    _write_mnist(tmp_path, gz=True)
    name = "train-images-idx3-ubyte.gz"
    good = gzip.decompress((tmp_path / name).read_bytes())
    (tmp_path / name).write_bytes(gzip.compress(good[:-28]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz holds 4692 bytes.*"
                                         r"shape \(6, 28, 28\).*4720 bytes were expected"):
        data.load_mnist(str(tmp_path))
    (tmp_path / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01") [:-6])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        data.load_mnist(str(tmp_path))
    (tmp_path / name).write_bytes(gzip.compress(b"\x12\x34" + good[2:]))
    with pytest.raises(ValueError, match="no IDX magic number"):
        data.load_mnist(str(tmp_path))
    (tmp_path / name).write_bytes(gzip.compress(_idx_bytes(np.zeros((6, 784)), 0x08)))
    with pytest.raises(ValueError, match="has 2 dimension.*expected 3"):
        data.load_mnist(str(tmp_path))


def test_idx_labels_out_of_range_count_mismatch_missing(tmp_path):
    _write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes([1, 2, 12, 3], 0x08))
    with pytest.raises(ValueError, match="label 12 at position 2 is out of range"):
        data.load_mnist(str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes([1, 2, 3], 0x08))
    with pytest.raises(ValueError, match="holds 4 images but .* holds 3 labels"):
        data.load_mnist(str(tmp_path))
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\] does not exist"):
        data.load_mnist(str(tmp_path))
    _write_mnist(tmp_path, gz=False)
    with pytest.raises(ValueError, match="n_test = 5 is larger than the 4"):
        data.load_mnist(str(tmp_path), n_test=5)


# -- digits --------------------------------------------------------------------------------------
def test_digits_from_sklearn_bundle():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    d = data.load_digits()
    assert d.x_train.shape == (1000, 8, 8, 1) and d.x_test.shape == (797, 8, 8, 1)
    both = np.concatenate([d.x_train, d.x_test]).reshape(-1, 64)
    labels = np.concatenate([d.y_train, d.y_test])
    order = np.lexsort(both.T)
    ref_order = np.lexsort(ref.data.T)
    np.testing.assert_array_equal(both[order], ref.data[ref_order])
    np.testing.assert_array_equal(labels[order], ref.target[ref_order])
    again = data.load_digits(seed=0)
    np.testing.assert_array_equal(again.x_test, d.x_test)
    assert not np.array_equal(data.load_digits(seed=1).y_test, d.y_test)
    assert data.load_digits(n_train=50, n_test=100).x_train.shape[0] == 50


def test_digits_without_sklearn_says_how(monkeypatch):
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OSError, match=r"scikit-learn is not installed.*infwide\[sklearn\]"):
        data.load_digits()


# -- MNIST-1D ----------------------------------------------------------------------------------
def test_mnist1d_templates_follow_the_recipe():
    t = data.mnist1d_templates()
    assert t.shape == (10, 12)
    np.testing.assert_allclose(t[:, 0], 0)          # every signal starts at 0
    np.testing.assert_allclose(t.std(1), 1 / 6)     # standardised, then divided by 6


def test_mnist1d_deterministic_given_seed():
    a = data.make_mnist1d(num_samples=200, seed=3)
    b = data.make_mnist1d(num_samples=200, seed=3)
    c = data.make_mnist1d(num_samples=200, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.allclose(a.x_train, c.x_train)
    assert a.x_train.shape == (160, 40, 1) and a.x_test.shape == (40, 40, 1)
    x = np.concatenate([a.x_train, a.x_test])
    assert abs(x.mean()) < 1e-12 and abs(x.std() - 1) < 1e-12
    assert np.bincount(np.concatenate([a.y_train, a.y_test])).tolist() == [20] * 10


def test_mnist1d_default_size_and_difficulty():
    """The default set has 4000/1000 examples, and a linear classifier reaches about the
    published 32% (Greydanus 2020, logistic regression baseline)."""
    lm = pytest.importorskip("sklearn.linear_model")
    d = data.make_mnist1d()
    assert d.x_train.shape == (4000, 40, 1) and d.x_test.shape == (1000, 40, 1)
    clf = lm.LogisticRegression(max_iter=500).fit(d.x_train[..., 0], d.y_train)
    assert 0.27 < clf.score(d.x_test[..., 0], d.y_test) < 0.38


def test_mnist1d_rejects_bad_parameters():
    with pytest.raises(TypeError, match="unknown parameter.*'paddding'"):
        data.make_mnist1d(paddding=(1, 2))
    with pytest.raises(ValueError, match="train_split"):
        data.make_mnist1d(train_split=1.5)


# -- npz / csv ---------------------------------------------------------------------------------
def test_npz_and_csv_files(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 4)), rng.integers(3, 6, 30)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = data.load_file(str(tmp_path / "d.npz"), n_test=10, seed=1)
    assert d.x_train.shape == (20, 4) and d.x_test.shape == (10, 4)
    assert d.classes == (3, 4, 5) and d.num_classes == 3 and d.y_train.max() <= 2
    np.savetxt(tmp_path / "d.csv", np.column_stack([x, y]), delimiter=",", header="a,b,c,d,label")
    c = data.load_file(str(tmp_path / "d.csv"), n_test=10, seed=1)
    np.testing.assert_allclose(c.x_train, d.x_train)
    np.testing.assert_array_equal(c.y_test, d.y_test)
    np.savez(tmp_path / "t.npz", x=x, y=y, x_test=x[:5], y_test=y[:5])
    t = data.load_dataset(str(tmp_path / "t.npz"))
    np.testing.assert_array_equal(t.x_test, x[:5])


def test_file_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", a=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"bad\.npz holds arrays \['a'\]; expected 'x'"):
        data.load_file(str(tmp_path / "bad.npz"))
    np.savetxt(tmp_path / "f.csv", [[0.1, 0.5], [0.2, 1.0], [0.3, 1.5]], delimiter=",")
    with pytest.raises(ValueError, match="integer class labels"):
        data.load_file(str(tmp_path / "f.csv"))
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match=r"c\.npz is not a readable \.npz"):
        data.load_file(str(tmp_path / "c.npz"))
    with pytest.raises(FileNotFoundError, match="missing.csv does not exist"):
        data.load_file(str(tmp_path / "missing.csv"))


def test_load_dataset_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown data set 'imagenet'.*digits, mnist1d, "
                                         r"cifar10:DIR, mnist:DIR"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="needs a folder"):
        data.load_dataset("cifar10:")
    assert data.load_dataset("mnist1d", n_train=10, n_test=5).x_train.shape == (10, 40, 1)
    with pytest.raises(ValueError, match="n_train = 5000 is larger than the 4000"):
        data.load_dataset("mnist1d", n_train=5000)


# -- preprocessing -------------------------------------------------------------------------------
def test_standardize_and_per_image():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3, 2)) * [1, 5] + 7
    x[:, 0, 0] = 2.0                                  # a constant feature
    xt, xo = data.standardize(x, x[:5] * 2)
    assert xt.shape == x.shape and xo.shape == (5, 3, 2)
    flat = xt.reshape(50, -1)
    np.testing.assert_allclose(flat.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(flat.std(0)[1:], 1)
    p = data.normalize_per_image(x).reshape(50, -1)
    np.testing.assert_allclose(p.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose((p ** 2).mean(1), 1)


def test_zca_whitening_regularised_relative_to_mean_eigenvalue():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    (w0,) = data.zca_whiten(x, reg=0.0, per_image=False)
    np.testing.assert_allclose(w0.T @ w0 / 400, np.eye(6), atol=1e-9)
    reg = 0.3
    (w,) = data.zca_whiten(x, reg=reg, per_image=False)
    s = np.linalg.eigvalsh(x.T @ x / 400)
    eps = reg * s.mean()
    np.testing.assert_allclose(np.linalg.eigvalsh(w.T @ w / 400), np.sort(s / (s + eps)), rtol=1e-9)
    m = data.zca_whitening_matrix(x, reg)
    np.testing.assert_allclose(m, m.T, atol=1e-12)           # ZCA, not PCA: symmetric
    (wa,) = data.zca_whiten(x, reg=eps, reg_absolute_scale=True, per_image=False)
    np.testing.assert_allclose(wa, w, rtol=1e-9)


def test_zca_rank_control_and_test_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 12))
    m = data.zca_whitening_matrix(x, 0.1)
    s = np.linalg.eigvalsh(m)
    assert np.sum(np.isclose(s, 1.0)) >= 12 - 5            # directions without data unscaled
    tr, te = data.zca_whiten(x, x[:2] + 1, reg=0.1)
    assert tr.shape == (5, 12) and te.shape == (2, 12) and np.all(np.isfinite(te))
    with pytest.raises(ValueError, match="reg"):
        data.zca_whitening_matrix(x, -1)


def test_one_hot_centred():
    t = data.one_hot(np.array([0, 2, 9]), 10)
    np.testing.assert_allclose(t.sum(1), 0, atol=1e-12)
    np.testing.assert_allclose(t[1], [-0.1, -0.1, 0.9] + [-0.1] * 7)
    np.testing.assert_array_equal(data.one_hot(np.array([1]), 3, centred=False), [[0, 1, 0]])
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2; found 0\.\.3"):
        data.one_hot(np.array([0, 3]), 3)
