"""Property-based tests (hypothesis) over random architectures and random inputs.

The promise: ``kernel_fn`` either returns finite, symmetric, positive semi-definite kernels
(within rounding) or refuses with one of the few errors in ``REFUSALS`` (the exact message of
the exact layer: the generators provoke each on purpose). Never NaN, never a crash inside
compiled code, never a hang (hypothesis' deadline is off; the shapes are tiny, so a hang would
show as a timeout of the whole suite). Each test counts how many examples reached the numeric
checks and fails when too few did (``Tally``): a property that most examples skip by refusing
tests nothing.

The second half draws from the whole layer set (Dense, every nonlinearity, Conv with every
padding and stride, Avg/Sum pools, GlobalAvg/GlobalSum pools, Flatten, LayerNorm, Dropout in
both modes, FanOut/parallel/FanInSum/FanInProd/FanInConcat residual blocks, repeat, the tiny
models) and any inputs (batch of 1, 1x1 images, width-1 channels, float32/float64/int, zero,
duplicated, tiny or huge values), with x2 given or not and every `get`: rectangular kernels
must equal the off-diagonal block of the kernel of [x1; x2], and every `get` the matching
fields of the whole Kernel.
"""
import collections
import os
import re

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from infwide import stax
from infwide.batching import describe
from infwide.guards import PrecisionError

# More and random examples for a longer search (the committed run is derandomized):
#   INFWIDE_PROPERTY_SCALE=20 INFWIDE_PROPERTY_RANDOM=1 \
#       python -m pytest -q tests/stax/test_properties.py --hypothesis-seed=1
_SCALE = float(os.environ.get("INFWIDE_PROPERTY_SCALE", "1"))
_DERANDOMIZE = os.environ.get("INFWIDE_PROPERTY_RANDOM", "0") != "1"


def _settings(n):
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None,
                    derandomize=_DERANDOMIZE, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


NONLINEAR = [
    lambda: stax.Relu(), lambda: stax.LeakyRelu(0.1), lambda: stax.Abs(),
    lambda: stax.ABRelu(-0.5, 2.0), lambda: stax.Erf(), lambda: stax.Sigmoid_like(),
    lambda: stax.Gelu(), lambda: stax.Gelu(approximate=True), lambda: stax.Sin(),
    lambda: stax.Cos(), lambda: stax.Rbf(), lambda: stax.Gaussian(), lambda: stax.Exp(0.5, 0.5),
    lambda: stax.Sign(), lambda: stax.Monomial(2), lambda: stax.RectifiedMonomial(2),
    lambda: stax.Polynomial([0.5, 1.0, 0.3]), lambda: stax.Hermite(3),
    lambda: stax.ElementwiseNumerical(np.tanh, deg=25),
]
_ACT = (r"(?:Relu|LeakyRelu|Abs|ABRelu|Erf|Sigmoid_like|Gelu|Sin|Cos|Rbf|Gaussian|Exp|Sign|"
        r"Monomial|RectifiedMonomial|Polynomial|Hermite|ElementwiseNumerical)(?:\(.*?\))?")
# The refusals the generators provoke on purpose: (exact type, the start of the exact message).
REFUSALS = {
    # a nonlinearity after raw inputs, another nonlinearity, a product or a normalisation
    "nonlinearity of a non-Gaussian input": (
        ValueError, _ACT + r": the closed-form kernel needs a Gaussian input, i\.e\. a Dense or "
        r"Conv layer"),
    "LayerNorm of a non-Gaussian input": (
        ValueError, r"LayerNorm\(axis=[-(), 0-9]+\): the infinite-width kernel needs a Gaussian "
        r"input"),
    "FanInConcat of a non-Gaussian branch": (
        ValueError, r"FanInConcat\(axis=-?\d+\): every branch must end in a Gaussian layer"),
    "VALID window larger than the image": (
        ValueError, r"(?:Conv|AvgPool|SumPool)\(.*?\): input of shape \([0-9, ]+\) is too small "
        r"for the (?:filter|window)"),
    "a dual that overflows (Exp of a huge variance)": (
        ValueError, _ACT + r": the kernel is infinite or undefined for input variance"),
    "guards: the kernel left the float range (polynomials of huge or tiny inputs)": (
        PrecisionError, r".*?: (?:float32 overflow: the [a-z0-9 ]+ kernel left float32's range|"
        r"the [a-z0-9 ]+ kernel is not finite \(NaN or Inf\)|"
        r"the float32 kernel underflowed to zero)"),
}


class Tally:
    """Outcomes of one property test's examples: how many reached the numeric checks, and
    which of ``REFUSALS`` the others met; any other error fails the test."""

    def __init__(self):
        self.checked, self.refused = 0, collections.Counter()

    @staticmethod
    def which(e):
        """The name of the refusal ``e`` is; AssertionError when it is none of them."""
        for name, (cls, pattern) in REFUSALS.items():
            if type(e) is cls and re.match(pattern, str(e)):
                return name
        raise AssertionError(f"unexpected {type(e).__name__}: {e}") from e

    def refusal(self, e):
        self.refused[self.which(e)] += 1

    def require(self, min_share):
        n = self.checked + sum(self.refused.values())
        assert n > 0 and self.checked >= min_share * n, (
            f"only {self.checked} of {n} examples reached the numeric checks (at least "
            f"{min_share:.0%} must); refusals: {dict(self.refused)}")


@st.composite
def fc_networks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        width = draw(st.integers(1, 64))
        layers.append(stax.Dense(width, W_std=draw(st.floats(0.1, 3.0)),
                                 b_std=draw(st.sampled_from([None, 0.0, 0.1, 1.0])),
                                 parameterization=draw(st.sampled_from(["ntk", "standard"]))))
        if draw(st.booleans()):   # a residual block or LayerNorm on the affine layer's output
            layers.append(stax.serial(stax.FanOut(2),
                                      stax.parallel(stax.Identity(), stax.Dense(width)),
                                      stax.FanInSum()) if draw(st.booleans())
                          else stax.LayerNorm())
        layers.append(draw(st.sampled_from(NONLINEAR))())
    layers.append(stax.Dense(draw(st.integers(1, 3))))
    return stax.serial(*layers)


@st.composite
def conv_networks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        layers.append(stax.Conv(draw(st.integers(1, 8)), (2, 2),
                                strides=draw(st.sampled_from([None, (1, 1), (2, 1)])),
                                padding=draw(st.sampled_from(["VALID", "SAME", "CIRCULAR"])),
                                W_std=draw(st.floats(0.5, 2.0)),
                                b_std=draw(st.sampled_from([None, 0.1]))))
        layers.append(draw(st.sampled_from(NONLINEAR[:8]))())
    readout = draw(st.sampled_from(["flatten", "gap", "avgpool", "none"]))
    if readout == "flatten":
        layers.append(stax.Flatten())
    elif readout == "gap":
        layers.append(stax.GlobalAvgPool())
    elif readout == "avgpool":
        layers += [stax.AvgPool((2, 2), padding="SAME"), stax.Flatten()]
    if readout != "none":
        layers.append(stax.Dense(1))
    return stax.serial(*layers)


@st.composite
def inputs(draw, spatial):
    n = draw(st.integers(1, 4))
    shape = (n, draw(st.integers(2, 5)), draw(st.integers(2, 5)), draw(st.integers(1, 3))) \
        if spatial else (n, draw(st.integers(1, 6)))
    kind = draw(st.sampled_from(["normal", "zeros", "duplicated", "tiny", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal(shape)
    if kind == "zeros":
        x = np.zeros(shape)
    elif kind == "duplicated" and n > 1:
        x[-1] = x[0]
    elif kind == "tiny":
        x = x * 1e-6
    elif kind == "huge":
        x = x * 1e3
    return x.astype(draw(st.sampled_from([np.float32, np.float64])))


def _check_or_refused(net, x, tally):
    try:
        k = net.kernel_fn(x, None, ("nngp", "ntk"))
    except (ValueError, TypeError) as e:
        tally.refusal(e)
        return
    for name, m in zip(("nngp", "ntk"), k):
        m = np.asarray(m, dtype=np.float64)
        assert np.all(np.isfinite(m)), f"{name} has NaN/Inf for {net}"
        if m.ndim == 2:
            scale = max(np.abs(m).max(), 1e-300)
            assert np.allclose(m, m.T, rtol=1e-4, atol=1e-5 * scale), f"{name} not symmetric"
            ev = np.linalg.eigvalsh((m + m.T) / 2)
            assert ev.min() >= -1e-3 * scale, f"{name} not PSD: {ev.min()} (scale {scale})"
    tally.checked += 1


SETTINGS = _settings(60)


def test_fc_networks_finite_symmetric_psd_or_refused():
    tally = Tally()

    @SETTINGS
    @given(net=fc_networks(), x=inputs(spatial=False))
    def run(net, x):
        _check_or_refused(net, x, tally)

    run()
    tally.require(0.9)


def test_conv_networks_finite_symmetric_psd_or_refused():
    tally = Tally()

    @SETTINGS
    @given(net=conv_networks(), x=inputs(spatial=True))
    def run(net, x):
        _check_or_refused(net, x, tally)

    run()
    tally.require(0.85)


# -- the whole layer set, x2 given, every `get` ---------------------------------------------------
# Spatial blocks that keep the (H, W) shape, so residual branches can be combined.
def _same_conv(draw, chans):
    return stax.Conv(chans, draw(st.sampled_from([(1, 1), (2, 2), (3, 1)])), padding=draw(
        st.sampled_from(["SAME", "CIRCULAR"])), W_std=draw(st.floats(0.5, 2.0)),
        b_std=draw(st.sampled_from([None, 0.0, 0.2])),
        parameterization=draw(st.sampled_from(["ntk", "standard"])))


@st.composite
def residual_block(draw, spatial):
    """FanOut(2) -> parallel(a, b) -> FanInSum | FanInProd | FanInConcat."""
    chans = draw(st.integers(1, 4))
    lin = (lambda: _same_conv(draw, chans)) if spatial else \
        (lambda: stax.Dense(chans, W_std=draw(st.floats(0.5, 2.0)), b_std=0.1))
    branch = lambda: stax.serial(lin(), draw(st.sampled_from(NONLINEAR))(), lin())
    a = draw(st.sampled_from(["identity", "branch", "linear"]))
    left = stax.Identity() if a == "identity" else branch() if a == "branch" else lin()
    fan_in = draw(st.sampled_from(["sum", "prod", "concat"]))
    if a == "identity" and fan_in != "concat":
        return stax.serial(lin(), stax.FanOut(2), stax.parallel(left, branch()),
                           stax.FanInSum() if fan_in == "sum" else stax.FanInProd())
    return stax.serial(stax.FanOut(2), stax.parallel(left, branch()),
                       {"sum": stax.FanInSum, "prod": stax.FanInProd,
                        "concat": stax.FanInConcat}[fan_in]())


def _lin(draw, spatial, chans):
    return _same_conv(draw, chans) if spatial else \
        stax.Dense(chans, W_std=draw(st.floats(0.1, 3.0)),
                   b_std=draw(st.sampled_from([None, 0.0, 0.5])),
                   parameterization=draw(st.sampled_from(["ntk", "standard"])))


@st.composite
def any_block(draw, spatial):
    """One block; nonlinearities and LayerNorm mostly follow an affine layer (they need a
    Gaussian input), sometimes not (then a named refusal is the expected outcome)."""
    kind = draw(st.sampled_from(["lin", "act", "act", "residual", "norm", "dropout", "repeat",
                                 "bare"] + (["conv", "pool"] if spatial else [])))
    chans = draw(st.integers(1, 4))
    if kind == "lin":
        return _lin(draw, spatial, chans)
    if kind == "act":
        return stax.serial(_lin(draw, spatial, chans), draw(st.sampled_from(NONLINEAR))())
    if kind == "bare":
        return draw(st.sampled_from(NONLINEAR + [lambda: stax.LayerNorm()]))()
    if kind == "residual":
        return draw(residual_block(spatial))
    if kind == "norm":
        return stax.serial(_lin(draw, spatial, chans), stax.LayerNorm(
            axis=draw(st.sampled_from([-1, (1, 2, 3)] if spatial else [-1]))))
    if kind == "dropout":
        return stax.Dropout(draw(st.sampled_from([0.5, 0.9, 1.0])),
                            mode=draw(st.sampled_from(["train", "test"])))
    if kind == "repeat":
        inner = stax.serial(draw(st.sampled_from(NONLINEAR))(), _lin(draw, spatial, chans))
        return stax.serial(_lin(draw, spatial, chans), stax.repeat(inner, draw(st.integers(1, 3))))
    if kind == "conv":   # any padding and stride (may shrink the image, or refuse)
        return stax.Conv(draw(st.integers(1, 3)), draw(st.sampled_from([(1, 1), (2, 2), (3, 2)])),
                         strides=draw(st.sampled_from([None, (1, 1), (2, 2), (1, 2)])),
                         padding=draw(st.sampled_from(["VALID", "SAME", "CIRCULAR"])),
                         W_std=draw(st.floats(0.5, 2.0)), b_std=draw(st.sampled_from([None, 0.1])))
    return draw(st.sampled_from([
        lambda: stax.AvgPool((2, 2), padding="SAME"),
        lambda: stax.AvgPool((2, 1), strides=(1, 1), normalize_edges=True, padding="SAME"),
        lambda: stax.SumPool((1, 2), padding="VALID"),
        lambda: stax.AvgPool((2, 2), strides=(2, 2), padding="VALID")]))()


@st.composite
def any_network(draw, spatial):
    layers = [draw(any_block(spatial)) for _ in range(draw(st.integers(1, 4)))]
    if spatial:
        readout = draw(st.sampled_from(["flatten", "gap", "gsp", "none"]))
        if readout != "none":
            layers.append({"flatten": stax.Flatten, "gap": stax.GlobalAvgPool,
                           "gsp": stax.GlobalSumPool}[readout]())
    if draw(st.booleans()):
        layers.append(stax.Dense(draw(st.integers(1, 3)), W_std=draw(st.floats(0.5, 2.0))))
    return stax.serial(*layers)


@st.composite
def any_inputs(draw, spatial):
    """x1 and x2 (or None): any batch sizes (1 included), 1x1 images, width-1 channels,
    float32/float64/int, zero, duplicated, tiny or huge values."""
    n1, n2 = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    feat = (draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))) \
        if spatial else (draw(st.integers(1, 5)),)
    kind = draw(st.sampled_from(["normal", "zeros", "duplicated", "tiny", "huge", "int"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n1 + n2,) + feat)
    if kind == "zeros":
        x[: max(1, n1 // 2)] = 0.0
    elif kind == "duplicated":
        x[-1] = x[0]   # a point of x2 equal to one of x1 (or inside x1 when x2 is None)
    elif kind in ("tiny", "huge"):
        x = x * (1e-6 if kind == "tiny" else 1e3)
    dtype = np.int64 if kind == "int" else draw(st.sampled_from([np.float32, np.float64]))
    x = np.rint(3 * x).astype(dtype) if kind == "int" else x.astype(dtype)
    return x[:n1], (x[n1:] if draw(st.booleans()) else None)


GETS = [None, "nngp", "ntk", "cov1", ("nngp", "ntk"), ("ntk", "cov1", "nngp")]


def _check_get(net, x1, x2, get, full):
    """``get`` variants return exactly the fields of the whole Kernel."""
    out = net.kernel_fn(x1, x2, get)
    if get is None:
        assert hasattr(out, "nngp") and hasattr(out, "shape1")
        return
    names = (get,) if isinstance(get, str) else get
    vals = (out,) if isinstance(get, str) else tuple(out)
    if not isinstance(get, str):
        assert tuple(out._fields) == tuple(names)
    for n, v in zip(names, vals):
        np.testing.assert_array_equal(np.asarray(v), np.asarray(getattr(full, n)))


def _check_block(net, x1, x2, k, dtype):
    """Rectangular kernels are the off-diagonal block of the kernel of [x1; x2]."""
    try:   # [x1; x2] has other diagonals (Dropout in 'train' mode): it may overflow alone
        joint = net.kernel_fn(np.concatenate([x1, x2]), None, ("nngp", "ntk"))
    except (ValueError, TypeError) as e:
        Tally.which(e)
        return
    n1 = len(x1)
    tol = 2e-3 if dtype == np.float32 else 1e-6
    for name, m, j in zip(("nngp", "ntk"), (k.nngp, k.ntk), joint):
        m, j = np.asarray(m, np.float64), np.asarray(j, np.float64)[:n1, n1:]
        scale = max(np.abs(j).max(), 1e-300)
        np.testing.assert_allclose(m, j, rtol=tol, atol=tol * scale,
                                   err_msg=f"{name}: kernel_fn(x1, x2) != block of [x1; x2] "
                                   f"for {net!r} on {x1!r}, {x2!r}")


def _check_any(net, x1, x2, get, tally):
    # Known limitation (xfail in tests/stax/test_reliability_inputs.py): Gauss-Hermite quadrature
    # with a few dozen nodes misses tanh' when the pre-activation std is ~1e3.
    assume(not ("ElementwiseNumerical" in repr(net) and np.abs(x1).max() > 100))
    try:
        k = net.kernel_fn(x1, x2, None)
    except (ValueError, TypeError) as e:
        tally.refusal(e)
        return
    dtype = np.float64 if x1.dtype.kind in "iu" else x1.dtype
    n2 = len(x1) if x2 is None else len(x2)
    for name in ("nngp", "ntk", "cov1"):
        m = getattr(k, name)
        assert m.dtype == dtype, f"{name} dtype {m.dtype} for inputs {x1.dtype}"
        assert np.all(np.isfinite(m)), f"{name} has NaN/Inf for {net}"
    assert k.nngp.shape[:2] == (len(x1), n2) and k.ntk.shape == k.nngp.shape
    if k.nngp.ndim == 2 and x2 is None:
        for name, m in (("nngp", k.nngp), ("ntk", k.ntk)):
            m = np.asarray(m, np.float64)
            scale = max(np.abs(m).max(), 1e-300)
            assert np.allclose(m, m.T, rtol=1e-4, atol=1e-5 * scale), f"{name} not symmetric"
            ev = np.linalg.eigvalsh((m + m.T) / 2)
            assert ev.min() >= -1e-3 * scale, \
                f"{name} not PSD: {ev.min()} (scale {scale}) for {describe(net)} on {x1!r}"
    _check_get(net, x1, x2, get, k)
    if x2 is not None and not (x2.shape == x1.shape and np.array_equal(x1, x2)):
        _check_block(net, x1, x2, k, dtype)
    tally.checked += 1


ANY_SETTINGS = _settings(300)


def test_any_fc_network_any_inputs():
    tally = Tally()

    @ANY_SETTINGS
    @given(net=any_network(spatial=False), xs=any_inputs(spatial=False),
           get=st.sampled_from(GETS))
    def run(net, xs, get):
        _check_any(net, *xs, get, tally)

    run()
    tally.require(0.65)


def test_any_spatial_network_any_inputs():
    tally = Tally()

    @ANY_SETTINGS
    @given(net=any_network(spatial=True), xs=any_inputs(spatial=True), get=st.sampled_from(GETS))
    def run(net, xs, get):
        _check_any(net, *xs, get, tally)

    run()
    tally.require(0.6)


@st.composite
def tiny_models(draw):
    from infwide import models
    act = draw(st.sampled_from(NONLINEAR[:8]))()
    which = draw(st.sampled_from(["fc", "cnn", "myrtle", "wrn"]))
    if which == "fc":
        return models.FC(draw(st.integers(0, 3)), width=2, activation=act,
                         b_std=draw(st.sampled_from([None, 0.1]))), False
    if which == "cnn":
        return models.CNN(draw(st.integers(1, 2)), readout=draw(st.sampled_from(
            ["flatten", "gap"])), channels=1, activation=act), True
    if which == "myrtle":
        return models.Myrtle(5, width=1, activation=act), True
    return models.WideResNet(10, k=1, activation=act), True


def test_models_tiny():
    tally = Tally()

    @_settings(60)
    @given(model=tiny_models(), seed=st.integers(0, 2**31), get=st.sampled_from(GETS))
    def run(model, seed, get):
        net, spatial = model
        rng = np.random.default_rng(seed)
        shape = (3, 4, 4, 2) if spatial else (3, 5)
        x = rng.standard_normal(shape)
        x2 = None if seed % 2 else rng.standard_normal((2,) + shape[1:])
        _check_any(net, x, x2, get, tally)

    run()
    tally.require(1.0)   # the ready models on ordinary inputs are never refused
