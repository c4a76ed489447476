"""Shared fixtures and helpers: read-only inputs, Monte-Carlo estimators, the NT fixtures.

Test modules import the helpers as ``from tests.conftest import mc_nngp`` (every test folder
is a package, so same-named test files may live in different folders)."""
import os

import numpy as np
import pytest

NT_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nt_fixtures")


def nt_fixture(name):
    """A stored Neural Tangents fixture (``tests/nt_fixtures/<name>``, made by its
    ``make_*.py`` script with the NT oracle)."""
    return np.load(os.path.join(NT_FIXTURES, name))


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


@pytest.fixture
def x_fc():
    """Small fully-connected inputs: (5, 7) and (4, 7), float64, read-only."""
    rng = np.random.default_rng(1234)
    return readonly(rng.standard_normal((5, 7))), readonly(rng.standard_normal((4, 7)))


def mc_nngp(layer, x1, x2, n_samples, seed=0, batch=1):
    """Monte-Carlo NNGP of a network's output: E[f(x1) f(x2)^T], averaged over output channels
    and ``n_samples`` independent initialisations (channels last, batch first)."""
    init_fn, apply_fn, _ = layer
    rng = np.random.default_rng(seed)
    acc = 0.0
    for _ in range(n_samples):
        _, params = init_fn(rng, x1.shape)
        f1, f2 = apply_fn(params, x1), apply_fn(params, x2)
        f1 = f1.reshape(f1.shape[0], -1, f1.shape[-1])
        f2 = f2.reshape(f2.shape[0], -1, f2.shape[-1])
        acc = acc + np.einsum("isc,jtc->ijst", f1, f2) / f1.shape[-1]
    out = acc / n_samples
    return out


def assert_equals_general_path(sym, general, rtol):
    """``sym`` = ``kernel_fn(x, None)`` against ``general`` = ``kernel_fn(x, np.roll(x, 1, 0))``
    with its columns rolled back (the general two-input path: ``kernel_fn(x, x)`` would be
    rewritten into ``kernel_fn(x, None)``): to ``rtol`` off the diagonal, and to 1e-7 on it,
    where the general path meets coincident points and its angle comes from
    ``sqrt(k11 k22 - k12^2)`` of nearly equal numbers, which keeps about half the digits."""
    general = np.roll(general, -1, axis=1)
    off = ~np.eye(len(sym), dtype=bool)
    np.testing.assert_allclose(sym[off], general[off], rtol=rtol)
    np.testing.assert_allclose(np.diagonal(sym), np.diagonal(general), rtol=max(rtol, 1e-7))


def cupy_on_gpu():
    """``(cupy, pytestmark)`` for a test module that needs CuPy and a CUDA device: skips the
    module without CuPy, and marks its tests ``gpu`` and skipped without a device."""
    cp = pytest.importorskip("cupy")
    try:
        has_gpu = cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        has_gpu = False
    return cp, [pytest.mark.gpu, pytest.mark.skipif(not has_gpu,
                                                    reason="needs an NVIDIA GPU with CuPy")]
