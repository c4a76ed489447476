"""CUDA kernels of ``kernels.cuda`` in Numba's CUDA simulator (no GPU needed), against their
array references on tiny shapes; and the references against the CPU layers.

The simulator must be switched on before ``numba.cuda`` is imported, so the CUDA checks run
in one fresh subprocess (this file run as a script with ``NUMBA_ENABLE_CUDASIM=1``) that
prints a JSON of maximum relative errors; each test reads its entry.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from infwide.kernels.cuda import reference as R

RELU, ERF = (R.ACT_ABRELU, 0.0, 1.0, 0.0), (R.ACT_ERF, 1.3, 0.7, 0.1)
LEAKY = (R.ACT_ABRELU, 0.2, 1.0, 0.0)


def pair_inputs(n1, n2, h, w, c=3, seed=0, square=False):
    """Input kernels of random images: nngp (n1, n2, h, h, w, w) and per-image covs."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((n1, h, w, c))
    x2 = x1 if square else rng.standard_normal((n2, h, w, c))
    outer = lambda a, b: np.einsum("ahwc,bxyc->abhxwy", a, b) / c
    cov = lambda a: np.einsum("ahwc,axyc->ahxwy", a, a) / c
    return outer(x1, x2), cov(x1), (None if square else cov(x2))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _block_case(name, pad, acts, shape, dtype=np.float64, square=False, with_ntk=True):
    from infwide.kernels.cuda.block import conv_block
    n1, n2, h = shape
    nngp, c1, c2 = pair_inputs(n1, n2, h, h, square=square)
    ntk = 0.1 * np.random.default_rng(5).standard_normal(nngp.shape) if with_ntk else None
    if with_ntk and square:
        ntk = ntk + ntk.transpose(1, 0, 3, 2, 5, 4)     # a symmetric NTK, as x2 = x1 gives
    coefs = [R.layer_coefficients(1.5, 0.1), R.layer_coefficients(1.2, 0.3)][:len(acts)]
    ref = R.conv_block_ref(np, nngp, ntk, c1, c2, coefs, acts, pad)
    cast = lambda m: None if m is None else m.astype(dtype)
    got = conv_block(cast(nngp), cast(ntk), cast(c1), cast(c2), coefs, acts, pad, threads=4)
    errs = {}
    for field, r, g in zip(("nngp", "ntk", "cov1", "cov2"), ref, got):
        assert (r is None) == (g is None), (name, field)
        if r is not None:
            assert g.dtype == dtype and g.shape == r.shape, (name, field, g.dtype, g.shape)
            errs[f"{name}/{field}"] = _rel(g, r)
    return errs


def _sim_checks():
    """Run every CUDA kernel in the simulator; return {check: max relative error}."""
    from infwide.kernels.cuda.pool import avg_pool_full_cuda
    out = {}
    out.update(_block_case("same_f64", "SAME", [RELU, ERF], (2, 1, 4)))
    out.update(_block_case("circular_square_f64", "CIRCULAR", [LEAKY], (2, 2, 4), square=True))
    out.update(_block_case("valid_f64_nngp_only", "VALID", [RELU, ERF], (1, 1, 5),
                           with_ntk=False))
    out.update(_block_case("same_square_f64", "SAME", [ERF], (2, 2, 3), square=True))
    out.update(_block_case("same_f32", "SAME", [RELU], (1, 2, 4), dtype=np.float32))
    out.update(_plan_checks())
    mat = pair_inputs(2, 1, 6, 6)[0]
    for nm, win, st in (("pool_2x2_s2", (2, 2), (2, 2)), ("pool_3x2_s1", (3, 2), None)):
        out[nm] = _rel(avg_pool_full_cuda(mat, 2, win, st, threads=32),
                       R.avg_pool_full(np, mat, 2, win, st))
    return out


def tiny_myrtle(padding="SAME"):
    """Conv-Relu x2, AvgPool, Conv-LeakyRelu, GlobalAvgPool, Dense: a Myrtle in miniature."""
    from infwide import stax
    conv = lambda: stax.Conv(4, (3, 3), padding=padding, W_std=1.4, b_std=0.1)
    return stax.serial(conv(), stax.Relu(), conv(), stax.Erf(1.2, 0.8, 0.1),
                       stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.LeakyRelu(0.1),
                       stax.GlobalAvgPool(), stax.Dense(1, W_std=1.3, b_std=0.2))


def _plan_checks():
    """The GPU plan (fused blocks + CUDA pool) on host arrays in the simulator vs the CPU."""
    from infwide import stax
    from infwide.stax._gpu_plan import serial_kernel_gpu
    from infwide.stax._inputs import inputs_to_kernel
    rng = np.random.default_rng(11)
    out = {}
    cases = (("plan_same_square", tiny_myrtle(), rng.standard_normal((2, 4, 4, 2)), None),
             ("plan_circular", tiny_myrtle("CIRCULAR"), rng.standard_normal((1, 4, 4, 2)),
              rng.standard_normal((2, 4, 4, 2))),
             ("plan_valid_flatten", stax.serial(stax.Conv(3, (3, 3), W_std=1.2), stax.Relu(),
                                                stax.Flatten(), stax.Dense(1)),
              rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((1, 5, 5, 2))))
    for name, net, x1, x2 in cases:
        ref = net.kernel_fn(x1, x2)
        k0 = inputs_to_kernel(x1, x2, diagonal_spatial=not net.input_needs_full(False),
                              compute_ntk=True)
        got = serial_kernel_gpu(net, k0, False)
        out[f"{name}/nngp"], out[f"{name}/ntk"] = _rel(got.nngp, ref.nngp), _rel(got.ntk, ref.ntk)
    return out


@pytest.fixture(scope="module")
def sim_errors():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


SIM_CHECKS = ["same_f64/nngp", "same_f64/ntk", "same_f64/cov1", "same_f64/cov2",
              "circular_square_f64/nngp", "circular_square_f64/ntk", "circular_square_f64/cov1",
              "valid_f64_nngp_only/nngp", "valid_f64_nngp_only/cov1",
              "valid_f64_nngp_only/cov2", "same_square_f64/nngp", "same_square_f64/ntk",
              "pool_2x2_s2", "pool_3x2_s1", "plan_same_square/nngp", "plan_same_square/ntk",
              "plan_circular/nngp", "plan_circular/ntk", "plan_valid_flatten/nngp",
              "plan_valid_flatten/ntk"]


@pytest.mark.parametrize("check", SIM_CHECKS)
def test_cuda_kernel_float64_matches_reference(sim_errors, check):
    assert sim_errors[check] < 1e-12, (check, sim_errors[check])


@pytest.mark.parametrize("field", ["nngp", "ntk", "cov1", "cov2"])
def test_cuda_block_float32_within_1e5(sim_errors, field):
    assert sim_errors[f"same_f32/{field}"] < 1e-5, sim_errors[f"same_f32/{field}"]


# -- the references themselves, on the CPU -----------------------------------------------------

def test_plan_groups_conv_activation_runs_between_pools():
    from infwide.stax._gpu_plan import steps
    from infwide.stax._plan import make_plan
    plan = make_plan(tiny_myrtle(), False)
    assert [s[0] for s in steps(plan)] == ["block", "layer", "block", "layer", "layer"]
    assert steps(plan)[0] == ("block", 0, 4, "SAME") and steps(plan)[2] == ("block", 5, 7, "SAME")


@pytest.mark.parametrize("padding", ["SAME", "VALID", "CIRCULAR"])
def test_box_reference_is_the_conv_full_of_kernels_conv(padding):
    from infwide.kernels import conv
    mat = pair_inputs(2, 3, 5, 4)[0]
    np.testing.assert_allclose(R.box_full(np, mat, 2, padding),
                               conv.conv_full(np, mat, (3, 3), (1, 1), padding, 2), rtol=1e-13,
                               atol=1e-15)


def test_pool_reference_is_the_avg_pool_full_of_kernels_pool():
    from infwide.kernels import pool
    mat = pair_inputs(2, 1, 6, 5)[0]
    np.testing.assert_allclose(R.avg_pool_full(np, mat, 2, (2, 2), (2, 2)),
                               pool.avg_pool_full(np, mat, (2, 2), (2, 2), "VALID", False, 2),
                               rtol=1e-13)


def test_block_reference_matches_stax_layers():
    from infwide import stax
    rng = np.random.default_rng(2)
    x1, x2 = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((3, 4, 4, 3))
    net = stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                      stax.Conv(8, (3, 3), padding="SAME", W_std=1.2, b_std=0.3),
                      stax.LeakyRelu(0.2))
    k = net.kernel_fn(x1, x2)
    outer = lambda a, b: np.einsum("ahwc,bxyc->abhxwy", a, b) / 3
    cov = lambda a: np.einsum("ahwc,axyc->ahxwy", a, a) / 3
    coefs = [R.layer_coefficients(1.5, 0.1), R.layer_coefficients(1.2, 0.3)]
    ref = R.conv_block_ref(np, outer(x1, x2), np.zeros((2, 3, 4, 4, 4, 4)), cov(x1), cov(x2),
                           coefs, [RELU, LEAKY], "SAME")
    for got, want in zip((k.nngp, k.ntk, k.cov1, k.cov2), ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_erf_dual_against_monte_carlo():
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for phi = a erf(b x) + c, 4e5 samples:
    tolerances of a few standard errors, far below what a wrong constant would give."""
    from scipy.special import erf
    a, b, c = 1.3, 0.7, 0.1
    cov = np.array([[1.4, 0.6], [0.6, 0.9]])
    z = np.random.default_rng(7).multivariate_normal([0, 0], cov, size=400_000)
    phi = a * erf(b * z) + c
    dphi = a * b * 2 / math.sqrt(math.pi) * np.exp(-(b * z) ** 2)
    nngp, dot = R.dual(np, ERF, np.float64(1.4), np.float64(0.6), np.float64(0.9))
    prod, dprod = phi[:, 0] * phi[:, 1], dphi[:, 0] * dphi[:, 1]
    assert abs(prod.mean() - nngp) < 4 * prod.std() / math.sqrt(len(prod))
    assert abs(dprod.mean() - dot) < 4 * dprod.std() / math.sqrt(len(dprod))


if __name__ == "__main__":   # the simulator subprocess of `sim_errors`
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"
    print(json.dumps(_sim_checks()))
