"""bench/gpu_check works before a GPU ever runs it: its --simulate mode end to end (Numba's
CUDA simulator, tiny shapes), its FLOP model and GPU-hours arithmetic, and its robustness."""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "gpu_check")


def _load():
    loader = importlib.machinery.SourceFileLoader("gpu_check", SCRIPT)
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_simulate_mode_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, SCRIPT, "--simulate", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=240, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    md = (tmp_path / "gpu_check.md").read_text()
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["errors"] == [] and res["simulate"] is True
    whats = {(row["what"], row["dtype"]) for row in res["rows"]}
    for arch in ("fc", "cnn_flatten", "myrtle-5", "myrtle-10"):
        for dt in ("float32", "float64"):
            assert (f"kernel {arch}", dt) in whats
            assert f"| kernel {arch} | {dt} |" in md
    assert ("predict gp_inference", "float64") in whats
    assert all(c[-1] for c in res["checks"]) and len(res["checks"]) == 12
    assert "GPU-hours" in md and "60k*(60k+1)/2" in md


def test_flop_model_and_gpu_hours():
    g = _load()
    per_layer = lambda side: 35 * side ** 4          # 35 flops per (H W)^2 entry
    want = (2 * 3 * 32 ** 4 + 3 * per_layer(32) + 16 * 16 ** 4 + 3 * per_layer(16)
            + 16 * 8 ** 4 + 3 * per_layer(8) + 8 ** 4)
    assert g.flops_per_pair("myrtle-10", 32) == want
    assert g.flops_per_pair("myrtle-5", 32) < want
    assert g.gpu_hours_full_cifar(1e6) == pytest.approx(60000 * 60001 / 2 / 1e6 / 3600)
    assert g.gpu_hours_full_cifar(2e6) == pytest.approx(g.gpu_hours_full_cifar(1e6) / 2)


def test_a_failing_step_is_reported_and_the_check_goes_on(capsys):
    g = _load()
    ctx = {"deadline": 1e18, "log": [], "errors": []}
    g.run_step(ctx, "boom", lambda b: 1 / 0, 10)
    g.run_step(ctx, "fine", lambda b: "ok", 10)
    assert ctx["errors"] == ["boom"]
    assert ctx["log"][0].startswith("FAIL boom: ZeroDivisionError")
    assert ctx["log"][1].startswith("OK   fine")
    ctx["deadline"] = 0.0
    g.run_step(ctx, "late", lambda b: "never", 10)
    assert ctx["log"][2].startswith("SKIP late")


def test_table_format():
    g = _load()
    rows = [{"what": "kernel myrtle-10", "dtype": "float64", "size": "8 x 8 (32px)",
             "seconds": 2.0, "pairs_per_s": 18.0, "tflops": 1.5, "peak_pct": 4.4,
             "cifar_gpu_hours": 27778.2}]
    t = g.table(rows).splitlines()
    assert t[0].startswith("| what | dtype |") and len(t) == 3
    assert t[2] == "| kernel myrtle-10 | float64 | 8 x 8 (32px) | 2 | 18 | 1.5 | 4.4 | 2.778e+04 |"
