"""Nonlinearity layers: the registry of every one, and invariants parametrised over it.

``REGISTRY`` is the one list of nonlinearities the activation tests use (the Monte-Carlo tests
in test_activations_mc.py, the fast-path tests in test_activations_fast.py). Each entry has an
independent NumPy ``phi`` and ``dphi`` written here, not taken from the library.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from scipy.special import erf

from infwide import stax
from infwide.stax.elementwise import Elementwise


@dataclass(frozen=True)
class Act:
    id: str
    make: Callable            # () -> Layer
    phi: Callable             # x -> phi(x), independent of the library
    dphi: Callable            # x -> phi'(x) (0 for Sign, as the library documents)
    var_max: float = np.inf   # largest pre-activation variance for which the kernel exists


def _poly(coef):
    return lambda x: np.polynomial.polynomial.polyval(x, coef)


def _dpoly(coef):
    return lambda x: np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyder(coef))


def _hermite(n):
    c = np.polynomial.hermite_e.herme2poly([0] * n + [1]) / math.sqrt(math.factorial(n))
    return Act(f"hermite{n}", lambda: stax.Hermite(n), _poly(c), _dpoly(c))


def _rect(n):
    return Act(f"rectified{n}", lambda: stax.RectifiedMonomial(n),
               lambda x: (x >= 0) * np.maximum(x, 0) ** n,
               (lambda x: (x > 0) * n * np.maximum(x, 0) ** max(n - 1, 0)) if n else np.zeros_like)


def _gelu(x):
    return x * (0.5 + 0.5 * erf(x / math.sqrt(2)))


def _dgelu(x):
    return 0.5 + 0.5 * erf(x / math.sqrt(2)) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


_SIG = 1 / 2.4020563531719796
_C = math.sqrt(2 / math.pi)

REGISTRY = [
    Act("relu", stax.Relu, lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    Act("relu_stab", lambda: stax.Relu(do_stabilize=True), lambda x: np.maximum(x, 0),
        lambda x: (x > 0) * 1.0),
    Act("leaky", lambda: stax.LeakyRelu(0.2), lambda x: np.where(x > 0, x, 0.2 * x),
        lambda x: np.where(x > 0, 1.0, 0.2)),
    Act("abs", stax.Abs, np.abs, np.sign),
    Act("abrelu", lambda: stax.ABRelu(-0.5, 1.5), lambda x: np.where(x > 0, 1.5 * x, -0.5 * x),
        lambda x: np.where(x > 0, 1.5, -0.5)),
    Act("erf", stax.Erf, erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
    Act("erf_abc", lambda: stax.Erf(0.8, 1.3, 0.1), lambda x: 0.8 * erf(1.3 * x) + 0.1,
        lambda x: 0.8 * 1.3 * 2 / math.sqrt(math.pi) * np.exp(-(1.3 * x) ** 2)),
    Act("sigmoid_like", stax.Sigmoid_like, lambda x: 0.5 * erf(_SIG * x) + 0.5,
        lambda x: 0.5 * _SIG * 2 / math.sqrt(math.pi) * np.exp(-(_SIG * x) ** 2)),
    Act("gelu", stax.Gelu, _gelu, _dgelu),
    Act("gelu_approx", lambda: stax.Gelu(approximate=True),
        lambda x: 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3))),
        lambda x: (0.5 * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
                   + 0.5 * x / np.cosh(_C * (x + 0.044715 * x ** 3)) ** 2
                   * _C * (1 + 3 * 0.044715 * x * x))),
    Act("sin", stax.Sin, np.sin, np.cos),
    Act("sin_abc", lambda: stax.Sin(1.2, 0.7, 0.3), lambda x: 1.2 * np.sin(0.7 * x + 0.3),
        lambda x: 1.2 * 0.7 * np.cos(0.7 * x + 0.3)),
    Act("cos_abc", lambda: stax.Cos(0.9, 1.1, -0.2), lambda x: 0.9 * np.cos(1.1 * x - 0.2),
        lambda x: -0.9 * 1.1 * np.sin(1.1 * x - 0.2)),
    Act("rbf", lambda: stax.Rbf(0.7),
        lambda x: math.sqrt(2) * np.sin(math.sqrt(1.4) * x + math.pi / 4),
        lambda x: math.sqrt(2) * math.sqrt(1.4) * np.cos(math.sqrt(1.4) * x + math.pi / 4)),
    Act("gaussian", stax.Gaussian, lambda x: np.exp(-x * x), lambda x: -2 * x * np.exp(-x * x)),
    Act("gaussian_pos", lambda: stax.Gaussian(0.8, 0.05), lambda x: 0.8 * np.exp(0.05 * x * x),
        lambda x: 0.08 * x * np.exp(0.05 * x * x), var_max=5.0),
    Act("exp", lambda: stax.Exp(0.5, 0.4), lambda x: 0.5 * np.exp(0.4 * x),
        lambda x: 0.2 * np.exp(0.4 * x)),
    Act("sign", stax.Sign, np.sign, np.zeros_like),
    Act("polynomial", lambda: stax.Polynomial([0.3, -1., 0.5, 0.2]), _poly([0.3, -1., 0.5, 0.2]),
        _dpoly([0.3, -1., 0.5, 0.2])),
    Act("numerical_tanh", lambda: stax.ElementwiseNumerical(np.tanh, 32), np.tanh,
        lambda x: 1 / np.cosh(x) ** 2),
    Act("numerical_relu_df", lambda: stax.ElementwiseNumerical(
        lambda x: np.maximum(x, 0), 8, df=lambda x: (x > 0) * 1.0),
        lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
]
REGISTRY += [Act(f"monomial{n}", (lambda n=n: stax.Monomial(n)), _poly([0] * n + [1]),
                 _dpoly([0] * n + [1])) for n in range(6)]
REGISTRY += [_rect(n) for n in range(5)]
REGISTRY += [_hermite(n) for n in range(5)]
BY_ID = {a.id: a for a in REGISTRY}
IDS = [a.id for a in REGISTRY]

# Every nonlinearity of the API contract (shared/API.md), by the constructor a registry entry uses.
API_NONLINEARITIES = ["Relu", "LeakyRelu", "Abs", "ABRelu", "Erf", "Sigmoid_like", "Gelu", "Sin",
                      "Cos", "Rbf", "Gaussian", "Exp", "Sign", "Monomial", "RectifiedMonomial",
                      "Polynomial", "Hermite", "ElementwiseNumerical"]


def fc_net(act, W1=1.1, b1=0.2):
    return stax.serial(stax.Dense(16, W_std=W1, b_std=b1), act.make(),
                       stax.Dense(4, W_std=0.9, b_std=0.1))


@pytest.fixture(scope="module")
def xs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6)) * np.array([[1.0], [0.6], [1.3], [0.9], [1.1]])
    return x, rng.standard_normal((3, 6))


def test_registry_covers_the_api():
    for name in API_NONLINEARITIES:
        assert hasattr(stax, name), name
    made = {type(a.make()).__name__ for a in REGISTRY}
    assert made == {"Elementwise"}
    names = " ".join(a.make().name for a in REGISTRY)
    for name in API_NONLINEARITIES:
        expected = {"Relu": "Relu", "Abs": "Abs"}.get(name, name)
        assert expected in names, f"{name} has no registry entry"


@pytest.mark.parametrize("aid", IDS)
def test_fn_and_dfn_match_independent_formulas(aid):
    act = BY_ID[aid]
    layer = act.make()
    x = np.linspace(-2.7, 2.9, 41)  # avoids 0, where some derivatives jump
    np.testing.assert_allclose(layer.fn(np, x), act.phi(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.dfn(np, x), act.dphi(x), rtol=1e-7, atol=1e-7)
    h = 1e-6
    fd = (act.phi(x + h) - act.phi(x - h)) / (2 * h)
    if aid != "sign":   # sign: derivative 0 by convention (zero almost everywhere)
        np.testing.assert_allclose(act.dphi(x), fd, rtol=1e-6, atol=1e-6)
    x32 = x.astype(np.float32)
    assert layer.fn(np, x32).dtype == np.float32 or aid.startswith("numerical")
    assert layer.dfn(np, x32).dtype == np.float32 or aid.startswith("numerical")


@pytest.mark.parametrize("aid", IDS)
def test_backward_is_ct_times_dfn(aid):
    layer = BY_ID[aid].make()
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4) + 0.01
    ct = np.arange(12.0).reshape(3, 4) - 5
    y, cache = layer.forward((), x)
    np.testing.assert_allclose(y, layer.apply((), x))
    _, dx = layer.backward((), cache, ct)
    np.testing.assert_allclose(dx, ct * BY_ID[aid].dphi(x), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("aid", IDS)
def test_kernels_symmetric_psd_and_x2_none(aid, xs):
    x, _ = xs
    net = fc_net(BY_ID[aid])
    k = net.kernel_fn(x, None)
    # kernel_fn(x, x) is rewritten into kernel_fn(x, None); the same points in another order
    # take the general two-input path, whose columns rolled back must give the same kernel
    k2 = net.kernel_fn(x, np.roll(x, 1, axis=0))
    assert not k2.x1_is_x2
    for a, b in ((k.nngp, np.roll(k2.nngp, -1, axis=1)), (k.ntk, np.roll(k2.ntk, -1, axis=1))):
        np.testing.assert_allclose(a, a.T, rtol=1e-12, atol=1e-14 * np.abs(a).max())
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9 * np.abs(a).max())
        assert np.linalg.eigvalsh(a).min() >= -1e-9 * max(np.abs(a).max(), 1e-300)
    np.testing.assert_allclose(np.diag(k.nngp), k.cov1, rtol=1e-7)


@pytest.mark.parametrize("aid", IDS)
def test_dual_symmetric_in_its_inputs(aid):
    dual = BY_ID[aid].make().dual
    k11, k12, k22 = np.array([1.3, 0.4]), np.array([0.5, -0.3]), np.array([0.6, 0.9])
    a, b = dual(k11, k12, k22, True), dual(k22, k12, k11, True)
    tol = 1e-10 if aid.startswith("numerical") else 1e-13   # quadrature / finite differences
    np.testing.assert_allclose(a[0], b[0], rtol=tol, atol=1e-15)
    np.testing.assert_allclose(a[1], b[1], rtol=tol, atol=1e-15)


@pytest.mark.parametrize("aid", IDS)
def test_float32_close_to_float64_and_keeps_dtype(aid, xs):
    x1, x2 = xs
    net = fc_net(BY_ID[aid])
    k64 = net.kernel_fn(x1, x2)
    k32 = net.kernel_fn(x1.astype(np.float32), x2.astype(np.float32))
    for name in ("nngp", "ntk", "cov1", "cov2"):
        a, b = getattr(k32, name), getattr(k64, name)
        assert a.dtype == np.float32, name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=name)


def _dual(layer, k11, k12, k22):
    return layer.dual(np.asarray(k11, float), np.asarray(k12, float), np.asarray(k22, float), True)


def test_identities_between_closed_forms():
    rng = np.random.default_rng(3)
    k11, k22 = rng.uniform(0.3, 2, 50), rng.uniform(0.3, 2, 50)
    k12 = rng.uniform(-1, 1, 50) * np.sqrt(k11 * k22)
    pairs = [(stax.ABRelu(0, 1), stax.Relu()), (stax.ABRelu(-1, 1), stax.Abs()),
             (stax.ABRelu(0.3, 1), stax.LeakyRelu(0.3)), (stax.RectifiedMonomial(1), stax.Relu()),
             (stax.Cos(1.2, 0.7, 0.4), stax.Sin(1.2, 0.7, 0.4 + math.pi / 2)),
             (stax.Rbf(0.6), stax.Sin(math.sqrt(2), math.sqrt(1.2), math.pi / 4)),
             (stax.Sigmoid_like(), stax.Erf(0.5, 1 / 2.4020563531719796, 0.5)),
             (stax.Monomial(4), stax.Polynomial([0, 0, 0, 0, 1])),
             (stax.Gelu(True), stax.Gelu(False)), (stax.Relu(do_stabilize=True), stax.Relu())]
    for a, b in pairs:
        for u, v in zip(_dual(a, k11, k12, k22), _dual(b, k11, k12, k22)):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14, err_msg=a.name)


def test_hermite_at_unit_variance_is_power_of_k12():
    k12 = np.linspace(-1, 1, 21)
    one = np.ones_like(k12)
    for n in range(6):
        nngp, dot = _dual(stax.Hermite(n), one, k12, one)
        np.testing.assert_allclose(nngp, k12 ** n, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dot, n * k12 ** max(n - 1, 0) if n else 0 * k12, atol=1e-13)


def test_rectified_monomial_closed_forms_at_equal_inputs():
    """At x1 == x2 (k12 = k11 = k22 = q), where Neural Tangents returns NaN: E[relu(u)^(2n)] =
    (2n - 1)!! q^n / 2 and E[phi'^2] = n^2 (2n - 3)!! q^(n-1) / 2."""
    q = np.array([0.4, 1.0, 2.5])
    for n in range(6):
        nngp, dot = _dual(stax.RectifiedMonomial(n), q, q, q)
        dfact = lambda m: math.prod(range(m, 0, -2)) if m > 0 else 1
        np.testing.assert_allclose(nngp, dfact(2 * n - 1) * q ** n / 2, rtol=1e-13)
        want = n * n * dfact(2 * n - 3) * q ** (n - 1) / 2 if n else 0 * q
        np.testing.assert_allclose(dot, want, rtol=1e-13)
        assert np.all(np.isfinite(nngp)) and np.all(np.isfinite(dot))


def test_sign_ntk_term_is_zero_and_nngp_is_arcsine():
    k11, k12, k22 = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([1.0, 0.5])
    nngp, dot = _dual(stax.Sign(), k11, k12, k22)
    np.testing.assert_allclose(nngp, 2 / np.pi * np.arcsin(k12 / np.sqrt(k11 * k22)), rtol=1e-13)
    np.testing.assert_array_equal(dot, 0.0)


def test_zero_variance_is_finite_and_exact():
    """A zero-variance pre-activation (u = 0): E[phi(0) phi(v)] = phi(0) E[phi(v)]."""
    z, one = np.zeros(1), np.ones(1)
    assert _dual(stax.Relu(), z, z, one)[0][0] == 0.0
    np.testing.assert_allclose(_dual(stax.Polynomial([0.5, 1.0, 2.0]), z, z, one)[0],
                               0.5 * (0.5 + 2.0))
    np.testing.assert_allclose(_dual(stax.Cos(), z, z, one)[0], math.exp(-0.5))
    for act in REGISTRY:
        if act.id.startswith("numerical"):
            continue
        n, d = _dual(act.make(), z, z, one)
        assert np.isfinite(n).all() and np.isfinite(d).all(), act.id


@pytest.mark.parametrize("make, match", [
    (lambda: stax.Rbf(0.0), r"Rbf: `gamma` must be positive"),
    (lambda: stax.Rbf(-1.0), r"Rbf: `gamma` must be positive"),
    (lambda: stax.Monomial(-1), r"Monomial: `degree` must be a non-negative integer"),
    (lambda: stax.Monomial(2.5), r"Monomial: `degree` must be a non-negative integer"),
    (lambda: stax.RectifiedMonomial(-2), r"RectifiedMonomial: `degree`"),
    (lambda: stax.Hermite(-1), r"Hermite: `degree`"),
    (lambda: stax.Hermite(True), r"Hermite: `degree`"),
    (lambda: stax.Polynomial([[1.0, 2.0]]), r"Polynomial: `coef` must be a 1-D"),
    (lambda: stax.Polynomial(["a"]), r"Polynomial: `coef`"),
    (lambda: stax.Polynomial([1.0, np.nan]), r"Polynomial: `coef`"),
    (lambda: stax.ElementwiseNumerical(np.tanh, 0), r"ElementwiseNumerical: `deg`"),
    (lambda: stax.ElementwiseNumerical(np.tanh, 2.5), r"ElementwiseNumerical: `deg`"),
    (lambda: stax.ElementwiseNumerical("tanh", 5), r"ElementwiseNumerical: `fn` must be callable"),
    (lambda: stax.ElementwiseNumerical(np.tanh, 5, df=3), r"ElementwiseNumerical: `df`"),
    (lambda: stax.Erf(a="x"), r"Erf: `a` must be a real number"),
    (lambda: stax.Sin(b=np.inf), r"Sin: `b` must be finite"),
    (lambda: stax.LeakyRelu(np.nan), r"LeakyRelu: `alpha` must be finite"),
    (lambda: stax.ABRelu(None, 1), r"ABRelu: `a`"),
    (lambda: stax.Gaussian(1, "b"), r"Gaussian: `b`"),
    (lambda: stax.Exp(a=np.nan), r"Exp: `a`"),
    (lambda: stax.Gelu(approximate="yes"), r"Gelu: `approximate`"),
])
def test_invalid_parameters_name_the_layer(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_infinite_kernels_are_refused_not_returned(xs):
    x, _ = xs
    with pytest.raises(ValueError, match=r"Gaussian\(1.0, 0.5\).*below 1 / \(4 b\) = 0.5"):
        fc_net(Act("g", lambda: stax.Gaussian(1.0, 0.5), None, None)).kernel_fn(x)
    with pytest.raises(ValueError, match=r"Exp\(1.0, 30.0\): the kernel is infinite"):
        fc_net(Act("e", lambda: stax.Exp(1.0, 30.0), None, None)).kernel_fn(x)
    bad = stax.ElementwiseNumerical(lambda z: np.where(z > 1, np.nan, z), 6)
    with pytest.raises(ValueError, match=r"ElementwiseNumerical: the quadrature"):
        fc_net(Act("n", lambda: bad, None, None)).kernel_fn(x)


def test_needs_gaussian_input_like_nt(xs):
    for act in (stax.Erf(), stax.Hermite(2), stax.ElementwiseNumerical(np.tanh, 4)):
        with pytest.raises(ValueError, match="needs a Gaussian input"):
            stax.serial(stax.Dense(3), stax.Relu(), act).kernel_fn(xs[0])
        assert isinstance(act, Elementwise)


@pytest.mark.parametrize("fn, closed, df", [
    (lambda x: np.maximum(x, 0), stax.Relu, None),
    (np.abs, stax.Abs, None),
    (erf, stax.Erf, None),
    (lambda x: np.maximum(x, 0) ** 2, lambda: stax.RectifiedMonomial(2), None),
    (lambda x: np.maximum(x, 0), stax.Relu, lambda x: (x > 0) * 1.0),
])
def test_numerical_matches_closed_forms(fn, closed, df, xs):
    """ElementwiseNumerical, NTK without a user derivative, to 1e-6 (float64) through two layers
    in fully connected and diagonal-spatial convolutional networks."""
    x1, x2 = xs
    im = np.random.default_rng(5).standard_normal((3, 3, 3, 2))
    for act_n, act_c in ((stax.ElementwiseNumerical(fn, 40, df), closed()),):
        for arch, a, b in (("fc", x1, x2), ("conv", im, im[:2])):
            nets = []
            for act in (act_n, act_c):
                if arch == "fc":
                    nets.append(stax.serial(stax.Dense(8, 1.3, 0.2), act, stax.Dense(8, 0.9, 0.1),
                                            act, stax.Dense(1)))
                else:
                    nets.append(stax.serial(stax.Conv(4, (2, 2), padding="SAME", W_std=1.2),
                                            act, stax.Conv(4, (2, 2), b_std=0.1), act,
                                            stax.Flatten(), stax.Dense(1)))
            kn, kc = nets[0].kernel_fn(a, b), nets[1].kernel_fn(a, b)
            for name in ("nngp", "ntk", "cov1", "cov2"):
                u, v = getattr(kn, name), getattr(kc, name)
                np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6 * np.abs(v).max(),
                                           err_msg=f"{arch} {name}")
