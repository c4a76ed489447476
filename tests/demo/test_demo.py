"""``infwide demo`` at a tiny size: it runs, prints a table whose numbers are the computed ones,
writes its files, and the infinite-width 2-sigma band contains the finite ensemble's mean at the
printed times (checked here independently of the demo's own summary)."""
import json
import os

import numpy as np
import pytest

from infwide.cli import main
from infwide.demo import DemoConfig, run_demo
from infwide.demo import plot as demo_plot

TINY = ["--width", "256", "--members", "8", "--steps", "300", "--n-test", "41", "--no-progress"]
TINY_CONFIG = DemoConfig(width=256, members=8, steps=300, n_test=41)


def _printed_rows(out):
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().startswith("t  step"))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() or not line.strip()[0].isdigit():
            break
        rows.append(line.split())
    return rows


def _inside_band(res, i):
    """|finite ensemble mean - infinite mean| <= 2 sigma at every test input, at record i."""
    finite_mean = res.finite_test[i].mean(axis=0)[:, 0]
    mean = res.inf_mean_test[i][:, 0]
    sd = np.sqrt(np.clip(np.diagonal(res.inf_cov_test[i]), 0.0, None))
    return np.abs(finite_mean - mean) <= 2 * sd


def test_demo_tiny(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)] + TINY) == 0
    out = capsys.readouterr().out
    saved = json.load(open(tmp_path / "demo.json"))
    printed = _printed_rows(out)
    assert len(printed) == len(saved["rows"]) >= 4
    res = run_demo(TINY_CONFIG)
    assert res.learning_rate == pytest.approx(saved["learning_rate"], rel=1e-12)
    for cells, row in zip(printed, saved["rows"]):
        assert float(cells[0]) == pytest.approx(row["t"], rel=6e-3, abs=1e-9)  # 3 digits
        assert int(cells[1]) == row["step"]
        i = int(np.flatnonzero(res.steps == row["step"])[0])
        inside = _inside_band(res, i)
        assert inside.all(), f"t={row['t']}: finite mean outside the band at {np.sum(~inside)} inputs"
        assert cells[4] == "100%" and row["in_band"] == 1.0
        # the printed losses are the trained ensemble's, not typed numbers
        assert float(cells[7]) == pytest.approx(res.finite_loss_train[i].mean(), abs=6e-5)
    # the band is not vacuous: at a wrong time (4x) it misses the trained ensemble somewhere
    assert any(not _inside_shifted(res, i).all() for i in range(1, len(res.t)))
    if demo_plot.have_matplotlib():
        assert os.path.getsize(tmp_path / "demo.png") > 10_000


def _inside_shifted(res, i):
    from infwide import predict
    from infwide.demo.sine import network
    c = res.config
    net = network(c.depth, c.width, c.W_std, c.b_std, c.out_W_std, c.out_b_std, c.activation)
    ens = predict.gradient_descent_mse_ensemble(net.kernel_fn, res.x_train, res.y_train)
    g = ens(t=4 * res.t[i], x_test=res.x_test, get="ntk", compute_cov=True)
    sd = np.sqrt(np.clip(np.diagonal(g.covariance), 0.0, None))
    return np.abs(res.finite_test[i].mean(axis=0)[:, 0] - g.mean[:, 0]) <= 2 * sd


def test_demo_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo_plot, "have_matplotlib", lambda: False)
    assert main(["demo", "--out", str(tmp_path), "--steps", "20"] + TINY[:4] + TINY[6:]) == 0
    err = capsys.readouterr().err
    assert "matplotlib is not installed" in err and "figure skipped" in err
    assert len([l for l in err.splitlines() if "matplotlib" in l]) == 1
    assert not (tmp_path / "demo.png").exists() and (tmp_path / "demo.json").exists()


def test_demo_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--width", "0"])
    assert e.value.code == 2
    assert main(["demo", "--out", str(tmp_path), "--members", "1", "--no-progress"]) == 1
    assert "at least 2 members" in capsys.readouterr().err
