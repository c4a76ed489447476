"""Property-based tests (hypothesis) over random architectures and random inputs.

The promise: ``kernel_fn`` either returns finite, symmetric, positive semi-definite kernels
(within rounding) or raises a ValueError/TypeError whose message names a layer. Never NaN,
never a crash inside compiled code, never a hang (hypothesis' deadline is off; the shapes are
tiny, so a hang would show as a timeout of the whole suite).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from infwide import stax

NONLINEAR = [
    lambda: stax.Relu(), lambda: stax.LeakyRelu(0.1), lambda: stax.Abs(),
    lambda: stax.ABRelu(-0.5, 2.0), lambda: stax.Erf(), lambda: stax.Sigmoid_like(),
    lambda: stax.Gelu(), lambda: stax.Gelu(approximate=True), lambda: stax.Sin(),
    lambda: stax.Cos(), lambda: stax.Rbf(), lambda: stax.Gaussian(), lambda: stax.Exp(0.5, 0.5),
    lambda: stax.Sign(), lambda: stax.Monomial(2), lambda: stax.RectifiedMonomial(2),
    lambda: stax.Polynomial([0.5, 1.0, 0.3]), lambda: stax.Hermite(3),
    lambda: stax.ElementwiseNumerical(np.tanh, deg=25),
]
LAYER_NAMES = ("Dense", "Conv", "Relu", "Pool", "Flatten", "LayerNorm", "serial", "FanIn",
               "x1", "x2", "Erf", "Gelu", "Sin", "Cos", "Rbf", "Exp", "Gaussian", "Sign",
               "Monomial", "Polynomial", "Hermite", "Elementwise", "Abs", "ABRelu", "Sigmoid",
               "kernel_fn", "Dropout", "parallel", "repeat")


@st.composite
def fc_networks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        layers.append(stax.Dense(draw(st.integers(1, 64)), W_std=draw(st.floats(0.1, 3.0)),
                                 b_std=draw(st.sampled_from([None, 0.0, 0.1, 1.0])),
                                 parameterization=draw(st.sampled_from(["ntk", "standard"]))))
        layers.append(draw(st.sampled_from(NONLINEAR))())
        if draw(st.booleans()):
            layers.append(stax.serial(stax.FanOut(2),
                                      stax.parallel(stax.Identity(), stax.Dense(8)),
                                      stax.FanInSum()) if draw(st.booleans())
                          else stax.LayerNorm())
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


def _check_or_named_error(net, x):
    try:
        k = net.kernel_fn(x, None, ("nngp", "ntk"))
    except (ValueError, TypeError) as e:
        assert any(name in str(e) for name in LAYER_NAMES), f"error names no layer: {e}"
        return
    for name, m in zip(("nngp", "ntk"), k):
        m = np.asarray(m, dtype=np.float64)
        assert np.all(np.isfinite(m)), f"{name} has NaN/Inf for {net}"
        if m.ndim == 2:
            scale = max(np.abs(m).max(), 1e-300)
            assert np.allclose(m, m.T, rtol=1e-4, atol=1e-5 * scale), f"{name} not symmetric"
            ev = np.linalg.eigvalsh((m + m.T) / 2)
            assert ev.min() >= -1e-3 * scale, f"{name} not PSD: {ev.min()} (scale {scale})"


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(net=fc_networks(), x=inputs(spatial=False))
def test_fc_networks_finite_symmetric_psd_or_named_error(net, x):
    _check_or_named_error(net, x)


@SETTINGS
@given(net=conv_networks(), x=inputs(spatial=True))
def test_conv_networks_finite_symmetric_psd_or_named_error(net, x):
    _check_or_named_error(net, x)
