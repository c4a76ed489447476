"""`infwide kernel` with --store (resuming), --no-resume, --workers, --scheduler, progress."""
import json
import time

import pytest

from infwide.cli import main


def manifest(path):
    with open(path / "manifest.json") as f:
        return json.load(f)


def summary(out):
    return [l for l in out.splitlines() if l.strip().startswith(("nngp", "ntk"))]


def test_store_resumes_and_reports_progress(tmp_path, capsys):
    store = tmp_path / "k"
    args = ["kernel", "--n", "30", "--width", "8", "--batch-size", "7", "--store", str(store)]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "infwide.batch: 15/15 tiles (100%)" in first.err  # log lines: not a terminal
    assert "tiles/s" in first.err and "left" in first.err
    assert manifest(store)["runs"][-1]["computed"] == 15
    assert main(args + ["--workers", "2"]) == 0
    second = capsys.readouterr()
    assert manifest(store)["runs"][-1]["computed"] == 0
    assert summary(second.out) == summary(first.out)
    assert main(args + ["--no-resume"]) == 0
    assert manifest(store)["runs"] == [dict(manifest(store)["runs"][0], computed=15)]
    assert main(["kernel", "--n", "31", "--store", str(store)]) == 1
    assert "made for other inputs" in capsys.readouterr().err


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["kernel", "--workers", "0"])
    assert e.value.code == 2


def test_unreachable_scheduler(capsys):
    pytest.importorskip("distributed")
    t0 = time.monotonic()
    assert main(["kernel", "--n", "5", "--scheduler", "tcp://127.0.0.1:9",
                 "--scheduler-timeout", "1"]) == 1
    assert "no dask scheduler answered at 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    assert time.monotonic() - t0 < 15


def test_scheduler_runs_the_tiles(capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        base = ["kernel", "--n", "20", "--width", "8", "--batch-size", "6"]
        assert main(base) == 0
        local = summary(capsys.readouterr().out)
        assert main(base + ["--scheduler", cluster.scheduler_address, "--workers", "2"]) == 0
        out = capsys.readouterr()
        assert summary(out.out) == local and "10/10 tiles" in out.err
