"""``infwide classify``: end-to-end runs on every data source, the JSON record, accuracy on
digits, and exit codes with one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from infwide.cli import main


def _run(capsys, *argv):
    rc = main(["classify", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_digits_fc_reaches_98_percent(capsys, tmp_path):
    pytest.importorskip("sklearn")
    out_path = tmp_path / "r.json"
    rc, out, err = _run(capsys, "--arch", "fc", "--data", "digits", "--n-train", "1000",
                        "--n-test", "797", "--out", str(out_path))
    assert rc == 0, err
    assert "nngp: accuracy" in out and "ntk : accuracy" in out and "total" in out
    rec = json.loads(out_path.read_text())
    assert rec["n_train"] == 1000 and rec["n_test"] == 797 and rec["t"] is None
    for g in ("nngp", "ntk"):
        assert rec["results"][g]["accuracy"] >= 0.98
        assert 0 < rec["results"][g]["mse"] < 0.02
    assert rec["seconds"]["total"] > 0


def test_digits_convolutional_kernel_reaches_98_percent(capsys, tmp_path):
    """The issue's bar: >= 98% on digits with 1000 training and 797 test images using a
    convolutional kernel (CNN read out by Flatten; about 15 s on 2 cores)."""
    pytest.importorskip("sklearn")
    out_path = tmp_path / "r.json"
    rc, out, err = _run(capsys, "--arch", "cnn", "--data", "digits", "--n-train", "1000",
                        "--n-test", "797", "--out", str(out_path))
    assert rc == 0, err
    rec = json.loads(out_path.read_text())
    assert rec["n_train"] == 1000 and rec["n_test"] == 797
    assert rec["results"]["nngp"]["accuracy"] >= 0.98
    assert rec["results"]["ntk"]["accuracy"] >= 0.98


def test_mnist1d_finite_time_float32(capsys, tmp_path):
    out_path = tmp_path / "r.json"
    rc, out, err = _run(capsys, "--data", "mnist1d", "--n-train", "300", "--n-test", "100",
                        "--get", "ntk", "--t", "1e5", "--dtype", "float32", "--out", str(out_path))
    assert rc == 0, err
    rec = json.loads(out_path.read_text())
    assert rec["get"] == ["ntk"] and rec["t"] == 1e5 and rec["dtype"] == "float32"
    assert 0.2 < rec["results"]["ntk"]["accuracy"] <= 1      # chance is 0.1
    rc, _, _ = _run(capsys, "--data", "mnist1d", "--n-train", "300", "--n-test", "100",
                    "--get", "ntk", "--t", "0", "--out", str(out_path))
    rec0 = json.loads(out_path.read_text())
    assert rec0["results"]["ntk"]["mse"] == pytest.approx(0.09)   # untrained: outputs 0


def _write_cifar(folder, n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels[:, None], pixels], axis=1).tobytes()


def test_cifar10_folder_and_bad_file(capsys, tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(_write_cifar(tmp_path, 12, 0))
    (tmp_path / "test_batch.bin").write_bytes(_write_cifar(tmp_path, 5, 1))
    rc, out, err = _run(capsys, "--data", f"cifar10:{tmp_path}")
    assert rc == 0, err
    assert "12 train, 5 test, input (3072,)" in out and "per-image" in out
    (tmp_path / "test_batch.bin").write_bytes(_write_cifar(tmp_path, 5, 1)[:-1])
    rc, out, err = _run(capsys, "--data", f"cifar10:{tmp_path}")
    assert rc == 1
    assert err.count("\n") == 1 and "test_batch.bin has 15364 bytes" in err and "3073" in err


def test_npz_and_csv_files(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3))
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    rc, out, err = _run(capsys, "--data", str(tmp_path / "d.npz"), "--n-test", "20")
    assert rc == 0, err
    assert "40 train, 20 test, input (3,), 4 classes" in out
    np.savetxt(tmp_path / "d.csv", np.column_stack([x, y]), delimiter=",")
    rc, out, err = _run(capsys, "--data", str(tmp_path / "d.csv"), "--get", "nngp")
    assert rc == 0, err
    assert "standardize" in out
    rc, out, err = _run(capsys, "--data", "mnist1d", "--n-train", "200", "--n-test", "50",
                        "--preprocess", "zca", "--zca-reg", "0.1")
    assert rc == 0, err
    assert "zca(0.1)" in out


@pytest.mark.parametrize("argv, message", [
    (["--arch", "resnet"], "invalid choice: 'resnet' (choose from 'fc', 'cnn', 'cnn-gap', "
                           "'myrtle5'"),
    (["--data", "imagenet"], "unknown data set 'imagenet'; expected one of digits, mnist1d, "
                             "cifar10:DIR, mnist:DIR"),
    (["--get", "gp"], "invalid choice: 'gp'"),
    (["--t", "-1"], "expected a number >= 0 or 'inf'"),
    (["--n-train", "0"], "expected a positive integer"),
])
def test_usage_errors_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["classify", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--data", "mnist1d", "--n-train", "4001"], "n_train = 4001 is larger than the 4000"),
    (["--data", "cifar10:/no/such/folder"], "CIFAR-10 folder /no/such/folder does not exist"),
    (["--data", "mnist:/no/such/folder"], "mnist folder /no/such/folder does not exist"),
    (["--data", "/no/such/file.npz"], "data file /no/such/file.npz does not exist"),
])
def test_failures_exit_1_with_one_line(capsys, argv, message):
    rc, _, err = _run(capsys, *argv)
    assert rc == 1 and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_cnn_on_sequences_and_myrtle_needs_images(capsys):
    rc, out, err = _run(capsys, "--arch", "cnn", "--data", "mnist1d", "--n-train", "40",
                        "--n-test", "20", "--get", "nngp")
    assert rc == 0, err
    assert "input (40, 1)" in out
    rc, _, err = _run(capsys, "--arch", "myrtle5", "--data", "mnist1d", "--n-train", "40")
    assert rc == 1 and "needs 2-d images" in err


def test_spatial_arch_on_a_table_is_refused(capsys, tmp_path):
    np.savez(tmp_path / "t.npz", x=np.zeros((10, 4)), y=np.arange(10) % 2)
    rc, _, err = _run(capsys, "--arch", "cnn", "--data", str(tmp_path / "t.npz"))
    assert rc == 1 and "needs images or sequences" in err


def test_console_entry_point_exit_code():
    r = subprocess.run([sys.executable, "-m", "infwide", "classify", "--arch", "bogus"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "choose from 'fc'" in r.stderr
