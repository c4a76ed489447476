"""The fast dual implementations: Numba CPU loops and Numba-CUDA kernels against the NumPy
references, on every layout ``Elementwise`` produces (fully connected, diagonal and full spatial,
pairs and per-input covariances), in float64 and float32; the
automatic choice of implementation; and the CUDA kernels in Numba's CUDA simulator (a fresh
subprocess, since NUMBA_ENABLE_CUDASIM must be set before numba.cuda is imported).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from infwide.kernels.activations import _launch
from infwide.kernels.activations.erf import ERF, erf_constants
from infwide.kernels.activations.gelu import GELU
from infwide.kernels.activations.relu import ABRELU, abrelu_constants
from infwide.kernels.activations.trig import TRIG, trig_constants
from infwide.kernels.forms import self_variances, spatial_variances

FAST = {"abrelu": (ABRELU, abrelu_constants(-0.3, 1.2)),
        "relu": (ABRELU, abrelu_constants(0, 1)),
        "erf": (ERF, erf_constants(0.8, 1.3, 0.1)), "gelu": (GELU, (0.0,)),
        "sin": (TRIG, trig_constants(1.44, 0.49, np.cos(0.6))),
        "rbf": (TRIG, trig_constants(2.0, 1.4, 0.0))}


def _layouts(dtype, n1=5, n2=4):
    """(k11, k12, k22) triples as ``Elementwise`` builds them, from random inputs."""
    rng = np.random.default_rng(11)
    out = {}
    x1, x2 = rng.standard_normal((n1, 7)), rng.standard_normal((n2, 7))
    out["fc_pair"] = ((x1 * x1).mean(1)[:, None], x1 @ x2.T / 7, (x2 * x2).mean(1)[None, :])
    v1 = (x1 * x1).mean(1)
    out["fc_self"] = (v1, v1, v1)
    im1, im2 = rng.standard_normal((n1, 3, 2, 4)), rng.standard_normal((n2, 3, 2, 4))
    d1, d2 = (im1 ** 2).mean(-1), (im2 ** 2).mean(-1)
    k_diag = np.einsum("ahwc,bhwc->abhw", im1, im2) / 4
    out["diag_pair"] = (spatial_variances(np, d1, False, 1), k_diag,
                        spatial_variances(np, d2, False, 2))
    out["diag_self"] = (d1, d1, d1)
    f1 = np.einsum("ahwc,aHWc->ahHwW", im1, im1) / 4
    f2 = np.einsum("ahwc,aHWc->ahHwW", im2, im2) / 4
    k_full = np.einsum("ahwc,bHWc->abhHwW", im1, im2) / 4
    out["full_pair"] = (spatial_variances(np, f1, True, 1), k_full,
                        spatial_variances(np, f2, True, 2))
    left, right = self_variances(np, f1, True)
    out["full_self"] = (left, f1, right)
    return {k: tuple(np.ascontiguousarray(a, dtype=dtype) for a in v) for k, v in out.items()}


@pytest.mark.parametrize("name", list(FAST))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_cpu_equals_reference(name, dtype):
    dual, prm = FAST[name]
    for layout, (k11, k12, k22) in _layouts(dtype).items():
        ref = dual(k11, k12, k22, True, prm, backend="reference")
        got = dual(k11, k12, k22, True, prm, backend="cpu")
        for g, r, what in zip(got, ref, ("nngp", "dot")):
            assert g.dtype == dtype and g.shape == k12.shape, (layout, what)
            scale = np.abs(r).max()
            tol = 1e-14 if dtype == np.float64 else 2e-6
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol * scale,
                                       err_msg=f"{name} {layout} {what}")


def test_automatic_choice(monkeypatch):
    k11, k12, k22 = _layouts(np.float64)["fc_pair"]
    small = ABRELU._choose(k12)
    big = ABRELU._choose(np.zeros((200, 200)))
    assert (small, big) == ("reference", "cpu")
    assert ABRELU._choose(np.zeros((200, 200), np.float16)) == "reference"
    monkeypatch.setattr(_launch, "FAST_MIN_SIZE", 1)
    auto = ABRELU(k11, k12, k22, True, (0.0, 1.0))
    cpu = ABRELU(k11, k12, k22, True, (0.0, 1.0), backend="cpu")
    np.testing.assert_array_equal(auto[0], cpu[0])
    assert ABRELU(k11, k12, k22, False, (0.0, 1.0))[1] is None
    with pytest.raises(ValueError, match="unknown backend"):
        ABRELU(k11, k12, k22, True, (0.0, 1.0), backend="gpu")


_SIM_SCRIPT = textwrap.dedent("""
    import numpy as np, sys
    sys.path.insert(0, {tests!r})
    from test_activations_fast import FAST, _layouts
    worst = 0.0
    for dtype in (np.float64, np.float32):
        lay = _layouts(dtype, 3, 2)
        for name in ("abrelu", "erf", "gelu", "sin"):
            dual, prm = FAST[name]
            for layout in ("fc_pair", "diag_pair", "full_self"):
                k11, k12, k22 = lay[layout]
                ref = dual(k11, k12, k22, True, prm, backend="reference")
                got = dual(k11, k12, k22, True, prm, backend="cuda")
                for g, r in zip(got, ref):
                    assert g.dtype == dtype and g.shape == r.shape
                    err = float(np.max(np.abs(g - r)) / np.abs(r).max())
                    tol = 1e-14 if dtype == np.float64 else 2e-6
                    assert err <= tol, (name, layout, dtype, err)
                    worst = max(worst, err)
    print("OK", worst)
""")


def test_cuda_kernels_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    script = _SIM_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def test_importing_the_duals_does_not_import_numba_cuda():
    code = ("import sys, infwide, infwide.kernels.activations.relu, "
            "infwide.kernels.activations.erf, infwide.kernels.activations.trig, "
            "infwide.kernels.activations.gelu; from infwide import stax; stax.Erf(); "
            "print('numba.cuda' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.stdout.strip() == "False", res.stdout + res.stderr
