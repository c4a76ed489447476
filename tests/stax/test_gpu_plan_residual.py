"""The GPU runner of the plan (``infwide.stax._gpu_plan``) on residual networks, in Numba's
CUDA simulator: the branches of each block are planned in turn (fused CUDA conv/activation
blocks inside them) and the result equals the layer-by-layer CPU path. Before, a list of
branch kernels reached the runner's checks and raised AttributeError.

The simulator must be on before ``numba.cuda`` is imported, so the checks run in a fresh
subprocess (this file as a script with ``NUMBA_ENABLE_CUDASIM=1``) printing a JSON."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest


def _nets():
    from infwide import models, stax
    conv = lambda: stax.Conv(3, (3, 3), padding="SAME", W_std=1.2, b_std=0.1)
    block = stax.serial(stax.FanOut(2), stax.parallel(
        stax.serial(conv(), stax.Relu(), conv(), stax.Erf(1.1, 0.8, 0.0), conv()),
        stax.Identity()), stax.FanInSum())
    return {"wrn10": models.WideResNet(10, 0.25, out_dim=1),
            "erf_block": stax.serial(conv(), block, stax.Relu(), stax.GlobalAvgPool())}


def _checks():
    import infwide.stax._gpu_plan as gp
    from infwide.stax._fusion import fusion_disabled
    from infwide.stax._inputs import inputs_to_kernel
    rng = np.random.default_rng(3)
    out = {}
    for name, net in _nets().items():
        for x2n in (None, 1):
            x1 = rng.standard_normal((2, 4, 4, 2))
            x2 = None if x2n is None else rng.standard_normal((x2n, 4, 4, 2))
            with fusion_disabled():
                ref = net.kernel_fn(x1, x2)
            k0 = inputs_to_kernel(x1, x2, diagonal_spatial=False, compute_ntk=True)
            calls = []
            real = gp._run_block
            gp._run_block = lambda *a: calls.append(1) or real(*a)
            try:
                got = gp.serial_kernel_gpu(net, k0, False)
            finally:
                gp._run_block = real
            key = f"{name}/{'same' if x2 is None else 'x2'}"
            out[key] = {"blocks": len(calls), **{
                f: float(np.abs(getattr(got, f) - getattr(ref, f)).max() /
                         np.abs(getattr(ref, f)).max()) for f in ("nngp", "ntk")}}
    return out


@pytest.fixture(scope="module")
def sim():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["wrn10/same", "wrn10/x2", "erf_block/same", "erf_block/x2"])
def test_gpu_plan_runs_residual_networks(sim, case):
    res = sim[case]
    assert res["blocks"] >= 1, res   # the fused CUDA block ran inside a branch
    assert res["nngp"] < 1e-12 and res["ntk"] < 1e-12, res


if __name__ == "__main__":   # the simulator subprocess of `sim`
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"
    print(json.dumps(_checks()))
