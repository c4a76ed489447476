"""The benchmark harness: every workload runs at a tiny size and checks itself against the
reference recursions; the flop model, the comparison and the report are checked on values
worked out by hand. (Neural Tangents is never imported here; its worker is a script the
harness runs with another interpreter.)"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench import cli, flops, report, runner, workloads  # noqa: E402


def test_every_workload_runs_tiny_and_checks_itself(tmp_path):
    args = ["--size", "tiny", "--inline", "--no-peaks", "--repeats", "1", "--quiet",
            "--results-dir", str(tmp_path), "--name", "tiny", "--outputs-dir",
            str(tmp_path / "out")]
    assert cli.main(args) == 0
    doc = json.load(open(tmp_path / "tiny.json"))
    assert len(doc["rows"]) == 2 * len(workloads.names())
    for row in doc["rows"]:
        r = row["infwide"]
        assert "error" not in r, r
        assert r["median_s"] > 0 and r["check"]["ok"], (row["workload"], r["check"])
        for path in r["outputs"].values():
            assert np.isfinite(np.load(path)).all()
    table = open(tmp_path / "tiny.md").read()
    assert all(name in table for name in workloads.names())


def test_worker_in_a_fresh_process(tmp_path):
    opts = cli.build_parser().parse_args(["--size", "tiny", "--repeats", "1"])
    opts.inline = False
    rows = runner.run_workload("fc3", ["float32"], opts, log=lambda *a: None)
    r = rows[0]["infwide"]
    assert "error" not in r, r
    assert r["peak_rss_mb"] > 10 and r["check"]["ok"]


def test_flop_model_by_hand():
    fc = ("serial", [("Dense", [4], {}), ("Relu", [], {}), ("Dense", [1], {})])
    # input 2 d = 6, Dense 4, ReLU 12, Dense 4 per pair; x2 = x1 with N = 2: 3 pairs.
    assert flops.pair_flops(fc, (3,)) == 26
    assert flops.kernel_flops(fc, (3,), 2) == 78
    assert flops.kernel_flops(fc, (3,), 2, 5) == 260
    cnn = ("serial", [("Conv", [1, [3, 3]], {"padding": "SAME"}), ("GlobalAvgPool", [], {})])
    # 2 x 2 images, 1 channel, full covariance: 16 entries; input 2, conv 2*9+2, GAP 2 each.
    assert flops.pair_flops(cnn, (2, 2, 1)) == 16 * (2 + 20 + 2)
    flat = ("serial", [("Conv", [1, [3, 3]], {"padding": "SAME"}), ("Flatten", [], {})])
    assert flops.pair_flops(flat, (2, 2, 1)) == 4 * (2 + 20 + 2)   # diagonals only


def test_compare_and_report(tmp_path):
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.4]])
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    diff = runner.compare({"outputs": {"nngp": str(tmp_path / "a.npy")}},
                          {"outputs": {"nngp": str(tmp_path / "b.npy")}})
    assert diff["nngp"] == pytest.approx(0.4 / 4.4)
    row = {"workload": "fc3", "dtype": "float32", "n": 10, "n_test": None, "model_gflop": 2.0,
           "infwide": {"median_s": 0.5, "peak_rss_mb": 100.0},
           "nt": {"median_s": 2.0, "peak_rss_mb": 300.0}, "max_rel_diff_vs_nt": diff}
    doc = {"machine": {"cpu": "x", "cores": 2, "memory_gb": 1, "simd": []},
           "peaks": {"matmul_gflops": {"float32": 8.0}}, "rows": [row]}
    line = [l for l in report.markdown(doc).splitlines() if l.startswith("| fc3")][0]
    cells = [c.strip() for c in line.split("|")]
    assert cells[4:8] == ["500.0", "2,000.0", "4.0x", "2"]      # ms, NT ms, ratio, GFLOP
    assert cells[8:10] == ["4", "50%"]                           # GFLOP/s, of matmul peak


def test_infwide_bench_subcommand():
    out = subprocess.run([sys.executable, "-m", "infwide", "bench", "--help"], cwd="/",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--workloads" in out.stdout
