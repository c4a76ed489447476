"""Every dual activation with a scalar definition, on every backend, against its array form.

1. The array forms (``*_reference``, libm's arctan2) against closed forms that share no code
   with them: for k12 = 0, E[phi(u) phi(v)] = E[phi(u)] E[phi(v)] (and the same for phi'),
   from the one-dimensional means; zero variances included, which pins Neural Tangents'
   atan2(0, 0) = pi/2 (the limit of the uncorrelated case); for the arc-cosine family also
   x2 = s x1 (k12^2 = k11 k22 exactly) with s > 0 and s < 0 (collinear).
2. The one scalar of each dual, compiled by Numba for the CPU (a test loop over the scalar, and
   the library's CPU loop where there is one) and run by the CUDA kernels in Numba's CUDA
   simulator (``FastDual`` kernels, the fused block's ``dual_dev`` dispatcher and the fused
   block itself on an all-zero image), equals the array form at those degenerate points and at
   random ones, in float32 and float64.
3. The polynomial atan2 against libm on a dense grid (a bound that a wrong coefficient breaks),
   its conventions, and its coefficients re-derived.
4. With numba-cuda installed, the same scalars compile to PTX, float32 without float64.
"""
import json
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from infwide.kernels.activations import angle, arccos, erf, exp, gelu, relu, trig


def _relu_means(a, b):
    return lambda k: ((b - a) * np.sqrt(k / (2 * np.pi)), (a + b) / 2 + 0 * k)


def _erf_means(a, b, c):
    return lambda k: (c + 0 * k, a * b * 2 / np.sqrt(np.pi) / np.sqrt(1 + 2 * b * b * k))


def _sin_means(a, b, c):
    return lambda k: (a * np.sin(c) * np.exp(-b * b * k / 2),
                      a * b * np.cos(c) * np.exp(-b * b * k / 2))


def _half_moment(n):
    """E[z^n; z >= 0] for z ~ N(0, 1)."""
    return 2 ** (n / 2) * math.gamma((n + 1) / 2) / (2 * math.sqrt(math.pi))


def _rect_means(n):
    return lambda k: (_half_moment(n) * k ** (n / 2),
                      (n * _half_moment(n - 1) * k ** ((n - 1) / 2)) if n else 0 * k)


SIGMOID = (0.5, 1 / 2.4020563531719796, 0.5)
# name -> (FastDual, folded constants, k -> (E[phi(u)], E[phi'(u)]) for u ~ N(0, k))
DUALS = {
    "relu": (relu.ABRELU, relu.abrelu_constants(0, 1), _relu_means(0, 1)),
    "leaky_relu": (relu.ABRELU, relu.abrelu_constants(0.1, 1), _relu_means(0.1, 1)),
    "abs": (relu.ABRELU, relu.abrelu_constants(-1, 1), _relu_means(-1, 1)),
    "abrelu": (relu.ABRELU, relu.abrelu_constants(-0.3, 1.2), _relu_means(-0.3, 1.2)),
    "erf": (erf.ERF, erf.erf_constants(1.3, 0.7, 0.1), _erf_means(1.3, 0.7, 0.1)),
    "sigmoid_like": (erf.ERF, erf.erf_constants(*SIGMOID), _erf_means(*SIGMOID)),
    "gelu": (gelu.GELU, (0.0,),
             lambda k: (k / np.sqrt(2 * np.pi * (1 + k)), 0.5 + 0 * k)),
    "sin": (trig.TRIG, trig.trig_constants(1.44, 0.49, math.cos(0.6)), _sin_means(1.2, 0.7, 0.3)),
    "cos": (trig.TRIG, trig.trig_constants(1.44, 0.49, -math.cos(0.6)),
            _sin_means(1.2, 0.7, 0.3 + math.pi / 2)),
    "rbf": (trig.TRIG, trig.trig_constants(2.0, 1.4, 0.0),
            _sin_means(math.sqrt(2), math.sqrt(1.4), math.pi / 4)),
    "exp": (exp.EXP, exp.exp_constants(0.8, 0.6),
            lambda k: (0.8 * np.exp(0.18 * k), 0.48 * np.exp(0.18 * k))),
    "gaussian": (exp.GAUSSIAN, exp.gaussian_constants(1.1, -0.7),
                 lambda k: (1.1 / np.sqrt(1 + 1.4 * k), 0 * k)),
    "sign": (arccos.SIGN, (0.0,), lambda k: (0 * k, 0 * k)),
    "rect_mono0": (arccos.RECTIFIED_MONOMIAL, arccos.rectified_monomial_constants(0),
                   _rect_means(0)),
    "rect_mono1": (arccos.RECTIFIED_MONOMIAL, arccos.rectified_monomial_constants(1),
                   _rect_means(1)),
    "rect_mono3": (arccos.RECTIFIED_MONOMIAL, arccos.rectified_monomial_constants(3),
                   _rect_means(3)),
}
ARCCOS = ("relu", "leaky_relu", "abs", "abrelu", "sign", "rect_mono0", "rect_mono1",
          "rect_mono3")

# (k11, k12, k22), all exact in float32: zero variances, k12 = 0, x1 == x2, x2 = s x1
# (k12^2 = k11 k22 exactly) with s > 0 and s < 0
POINTS = {"zero_both": (0.0, 0.0, 0.0), "zero_first": (0.0, 0.0, 1.5),
          "zero_second": (2.25, 0.0, 0.0), "uncorrelated": (0.75, 0.0, 1.25),
          "x1_eq_x2": (1.5625, 1.5625, 1.5625), "parallel": (0.5625, 1.125, 2.25),
          "x1_eq_minus_x2": (1.5625, -1.5625, 1.5625), "antiparallel": (0.5625, -1.125, 2.25)}
TOL = {np.float32: 2e-6, np.float64: 1e-14}


def points(dtype, n_random=24):
    """``(k11, k12, k22)`` arrays: the degenerate points, then random covariances."""
    rng = np.random.default_rng(3)
    v1, v2 = rng.uniform(0.05, 3.0, n_random), rng.uniform(0.05, 3.0, n_random)
    k12 = rng.uniform(-1, 1, n_random) * np.sqrt(v1 * v2)
    fixed = np.array(list(POINTS.values())).T
    return tuple(np.concatenate([f, r]).astype(dtype) for f, r in zip(fixed, (v1, k12, v2)))


def rel_err(got, want, k11, k22):
    """Largest ``|got - want| / max(|want|, 1, k11, k22)`` over the entries."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.maximum.reduce([np.abs(want), np.ones_like(want), k11, k22])
    assert np.isfinite(got).all(), got
    return float(np.max(np.abs(got - want) / scale))


# -- 1. the array forms against closed forms ---------------------------------------------------

@pytest.mark.parametrize("name", list(DUALS))
def test_reference_at_k12_zero_is_the_product_of_means(name):
    dual, prm, means = DUALS[name]
    k11, k12, k22 = (np.array(v, np.float64) for v in
                     zip(*(POINTS[p] for p in ("zero_both", "zero_first", "zero_second",
                                               "uncorrelated"))))
    nngp, dot = dual(k11, k12, k22, True, prm, backend="reference")
    (m1, d1), (m2, d2) = means(k11), means(k22)
    np.testing.assert_allclose(nngp, m1 * m2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dot, d1 * d2, rtol=1e-13, atol=1e-15)


def _arccos_expected(name, k11, k12, k22):
    """E[phi(u) phi(s u)] and E[phi' phi'] for x2 = s x1 (k12 = s k11, k22 = s^2 k11)."""
    s = k12 / k11
    if name == "sign":
        return np.sign(s), 0 * s
    if name.startswith("rect_mono"):
        n = int(name[-1])
        if s < 0:
            return (0.0, 0.0)
        v = k11 * k22
        return (_half_moment(2 * n) * v ** (n / 2),
                n * n * _half_moment(2 * n - 2) * v ** ((n - 1) / 2) if n else 0.0)
    a, b = {"relu": (0, 1), "leaky_relu": (0.1, 1), "abs": (-1, 1), "abrelu": (-0.3, 1.2)}[name]
    if s > 0:     # phi(u) phi(s u) = s phi(u)^2, phi'(u) phi'(s u) = phi'(u)^2
        return (a * a + b * b) / 2 * k12, (a * a + b * b) / 2
    return a * b * k12, a * b     # phi(u) phi(-u) = -a b u^2


@pytest.mark.parametrize("name", ARCCOS)
@pytest.mark.parametrize("point", ["x1_eq_x2", "parallel", "x1_eq_minus_x2", "antiparallel"])
def test_reference_of_collinear_inputs(name, point):
    dual, prm, _ = DUALS[name]
    k11, k12, k22 = (np.array([v]) for v in POINTS[point])
    nngp, dot = dual(k11, k12, k22, True, prm, backend="reference")
    want = _arccos_expected(name, *POINTS[point])
    np.testing.assert_allclose([nngp[0], dot[0]], want, rtol=1e-14, atol=1e-15)


# -- 2. every backend of the one scalar --------------------------------------------------------

@numba.njit(error_model="numpy")
def _scalar_loop(scalar, k11, k12, k22, prm):
    """The scalar alone, compiled by Numba for the CPU (no library loop around it)."""
    T = k12.dtype.type
    nngp, dot = np.empty_like(k12), np.empty_like(k12)
    for i in range(k12.size):
        nngp[i], dot[i] = scalar(k11[i], k12[i], k22[i], prm, T)
    return nngp, dot


@pytest.mark.parametrize("name", list(DUALS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_cpu_equals_reference(name, dtype):
    dual, prm, _ = DUALS[name]
    k11, k12, k22 = points(dtype)
    ref = dual(k11, k12, k22, True, prm, backend="reference")
    typed = tuple(dtype(p) for p in prm)
    runs = {"scalar": _scalar_loop(dual.scalar, k11, k12, k22, typed)}
    if dual.cpu is not None:
        runs["cpu_loop"] = dual(k11, k12, k22, True, prm, backend="cpu")
    for how, got in runs.items():
        for g, r, what in zip(got, ref, ("nngp", "dot")):
            assert g.dtype == dtype, (how, what)
            assert rel_err(g, r, k11, k22) <= TOL[dtype], (how, what, g, r)


def test_missing_backend_is_named():
    k = np.ones(3)
    with pytest.raises(ValueError, match="no 'cpu' implementation"):
        exp.EXP(k, k, k, True, exp.exp_constants(1, 1), backend="cpu")


def test_fused_abrelu_entry_is_the_scalar():
    """``fused.scalar.abrelu_entry`` (the fused CPU chains) at the degenerate points."""
    from infwide.kernels.fused.scalar import abrelu_constants, abrelu_entry

    @numba.njit
    def run(k11, k12, k22, A, F):
        out = np.empty((2, k12.size), k12.dtype)
        for i in range(k12.size):
            out[0, i], out[1, i] = abrelu_entry(k12[i], k11[i] * k22[i], A, F)
        return out

    for dtype in (np.float32, np.float64):
        k11, k12, k22 = points(dtype)
        A, F = (dtype(c) for c in abrelu_constants(-0.3, 1.2))
        got = run(k11, k12, k22, A, F)
        assert got.dtype == dtype
        ref = relu.abrelu_dual(k11, k12, k22, True, -0.3, 1.2, backend="reference")
        for g, r in zip(got, ref):
            assert rel_err(g, r, k11, k22) <= TOL[dtype]


_SIM = """
import json, sys
import numpy as np
sys.path.insert(0, {here!r})
from test_dual_backends import DUALS, points, rel_err, sim_block_checks, sim_dual_dev_checks
out = {{}}
for dtype in (np.float32, np.float64):
    k11, k12, k22 = points(dtype)
    for name, (dual, prm, _) in DUALS.items():
        ref = dual(k11, k12, k22, True, prm, backend="reference")
        got = dual(k11, k12, k22, True, prm, backend="cuda")
        assert all(g.dtype == dtype for g in got), name
        out[f"{{name}}/{{dtype.__name__}}"] = max(rel_err(g, r, k11, k22)
                                                  for g, r in zip(got, ref))
    out.update(sim_dual_dev_checks(dtype))
    out.update(sim_block_checks(dtype))
print(json.dumps(out))
"""


def sim_dual_dev_checks(dtype):
    """The fused block's ``dual_dev`` in a CUDA kernel, one thread per point, per kind."""
    global cuda     # a module global: the simulator swaps those for its thread API
    from numba import cuda
    from infwide.kernels.cuda import reference as R
    from infwide.kernels.cuda.duals import act_table, dual_dev

    @cuda.jit
    def kernel(acts, k11, k12, k22, nngp, dot):
        m = cuda.grid(1)
        if m < k12.size:
            for l in range(acts.shape[0]):
                prm = (acts[l, 1], acts[l, 2], acts[l, 3], acts[l, 4])
                nngp[l, m], dot[l, m] = dual_dev(acts[l, 0], prm, k11[m], k12[m], k22[m])

    rows = [(R.ACT_ABRELU, 0.0, 1.0, 0.0), (R.ACT_ABRELU, -0.3, 1.2, 0.0),
            (R.ACT_ERF, 1.3, 0.7, 0.1), (R.ACT_NONE, 0.0, 0.0, 0.0)]
    k11, k12, k22 = points(dtype)
    nngp, dot = np.empty((len(rows), k12.size), dtype), np.empty((len(rows), k12.size), dtype)
    kernel[1, 32](act_table(rows, dtype), k11, k12, k22, nngp, dot)
    out = {}
    for l, row in enumerate(rows):
        ref = R.dual(np, row, k11, k12, k22)
        out[f"dual_dev{l}/{dtype.__name__}"] = max(rel_err(g, r, k11, k22)
                                                   for g, r in zip((nngp[l], dot[l]), ref))
    return out


def sim_block_checks(dtype):
    """The fused CUDA block on a batch with an all-zero image and no bias (zero variances,
    so every ReLU entry of that image passes atan2(0, 0)) against its array reference."""
    from infwide.kernels.cuda import reference as R
    from infwide.kernels.cuda.block import conv_block
    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((1, 3, 3, 2))
    x1[1] = 0.0
    outer = lambda a, b: np.einsum("ahwc,bxyc->abhxwy", a, b) / 2
    nngp = outer(x1, x2)
    cov1 = np.einsum("ahwc,axyc->ahxwy", x1, x1) / 2
    cov2 = np.einsum("ahwc,axyc->ahxwy", x2, x2) / 2
    ntk = rng.uniform(0.5, 1.0, nngp.shape)
    coefs = [R.layer_coefficients(1.5), R.layer_coefficients(1.2, 0.3)]
    acts = [(R.ACT_ABRELU, 0.0, 1.0, 0.0), (R.ACT_ERF, 1.3, 0.7, 0.1)]
    ref = R.conv_block_ref(np, nngp, ntk, cov1, cov2, coefs, acts, "SAME")
    cast = lambda m: m.astype(dtype)
    got = conv_block(cast(nngp), cast(ntk), cast(cov1), cast(cov2), coefs, acts, "SAME",
                     threads=4)
    out = {}
    for field, g, r in zip(("nngp", "ntk", "cov1", "cov2"), got, ref):
        assert g.dtype == dtype, field
        err = np.abs(g - r).max() / np.abs(r).max()
        out[f"block_zero_image/{field}/{dtype.__name__}"] = float(err)
    return out


@pytest.fixture(scope="module")
def simulated():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    script = _SIM.format(here=os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(DUALS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernel_in_the_simulator_equals_reference(simulated, name, dtype):
    assert simulated[f"{name}/{dtype.__name__}"] <= TOL[dtype]


@pytest.mark.parametrize("row", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_dual_dispatcher_in_the_simulator_equals_reference(simulated, row, dtype):
    assert simulated[f"dual_dev{row}/{dtype.__name__}"] <= TOL[dtype]


@pytest.mark.parametrize("field", ["nngp", "ntk", "cov1", "cov2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_on_a_zero_image_in_the_simulator(simulated, field, dtype):
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    assert simulated[f"block_zero_image/{field}/{dtype.__name__}"] < tol


# -- 3. the polynomial atan2 -------------------------------------------------------------------

@numba.njit(error_model="numpy")
def _atan2_loop(y, x):
    T = x.dtype.type
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = angle.atan2_nonneg(y[i], x[i], T)
    return out


@pytest.mark.parametrize("dtype, max_ulp", [(np.float32, 3.0), (np.float64, 3.5)])
def test_atan2_against_libm_on_a_dense_grid(dtype, max_ulp):
    """2 10^5 angles over [0, pi] (uniform, and crowded at 0 and pi) with magnitudes
    1e-6..1e6; the error in units of the result's last place, against libm on the same
    (rounded) inputs. Measured: 2.5 (float32) and 3.0 (float64)."""
    rng = np.random.default_rng(5)
    ang = np.concatenate([np.linspace(0, np.pi, 100001), rng.uniform(0, np.pi, 90000),
                          np.logspace(-12, 0, 5000), np.pi - np.logspace(-7, 0, 5000)])
    mag = 10.0 ** rng.uniform(-6, 6, ang.size)
    y, x = (np.sin(ang) * mag).astype(dtype), (np.cos(ang) * mag).astype(dtype)
    y = np.abs(y)
    got = _atan2_loop(y, x)
    assert got.dtype == dtype
    exact = np.arctan2(y.astype(np.float64), x.astype(np.float64))
    ulp = np.spacing(np.maximum(exact, np.finfo(dtype).tiny).astype(dtype)).astype(np.float64)
    assert np.max(np.abs(got - exact) / ulp) <= max_ulp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_atan2_conventions(dtype):
    y, x = np.array([0, 0, 0, 1, 0], dtype), np.array([0, 2, -2, 0, -0.0], dtype)
    want = np.array([np.pi / 2, 0, np.pi, np.pi / 2, np.pi / 2], dtype)
    np.testing.assert_array_equal(_atan2_loop(y, x), want)     # exact, NT's fill included
    y, x = np.array([3, 2], dtype), np.array([3, -2], dtype)
    np.testing.assert_allclose(_atan2_loop(y, x), [np.pi / 4, 3 * np.pi / 4],
                               rtol=2 * np.finfo(dtype).eps)
    zero = np.zeros(1, dtype)
    assert angle.angle_reference(np, zero, zero)[0] == dtype(np.pi / 2)
    signed = [angle.atan2_signed(dtype(v), dtype(1.5), dtype) for v in (-2, 0, 2)]
    np.testing.assert_allclose(signed, np.arctan2([-2, 0, 2], 1.5), rtol=4 * np.finfo(dtype).eps)


def test_atan2_python_body_is_the_compiled_one():
    """The plain Python source (what a simulator or a reader runs) computes what Numba does."""
    for dtype in (np.float32, np.float64):
        y, x = np.array([0.3, 5.0, 0.0], dtype), np.array([-1.7, 0.25, 0.0], dtype)
        py = [angle.atan2_nonneg.py_func(a, b, dtype) for a, b in zip(y, x)]
        np.testing.assert_array_equal(np.array(py, dtype), _atan2_loop(y, x))


def test_atan2_coefficients_reproducible():
    pytest.importorskip("mpmath")
    assert angle.fit_coefficients(4) == angle.COEF32
    assert angle.fit_coefficients(9) == angle.COEF64


# -- 4. the scalars compile for CUDA -----------------------------------------------------------

_PTX = """
import types, numba.cuda.dispatcher as d
from numba import cuda, types as T
d.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
import sys
sys.path.insert(0, {here!r})
from test_dual_backends import DUALS
from infwide.kernels.activations._cuda import dual_kernel
for name, (dual, prm, _) in DUALS.items():
    for ft in (T.float32, T.float64):
        a3 = ft[:, :, :]
        ptx, _ = cuda.compile_ptx(dual_kernel(dual.scalar).py_func,
                                  (a3,) * 5 + (T.UniTuple(ft, len(prm)),), cc=(9, 0))
        print(name, ft, ptx.count(".f64"), flush=True)
"""


def test_scalars_compile_to_ptx_and_float32_stays_float32():
    pytest.importorskip("numba_cuda")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    script = _PTX.format(here=os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=600, env=env)
    if r.returncode != 0 and "NVVM" in r.stderr and "not found" in r.stderr.lower():
        pytest.skip("numba-cuda without NVVM")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 2 * len(DUALS)
    for name, ft, n64 in rows:
        if ft == "float32":
            assert n64 == "0", (name, n64)
