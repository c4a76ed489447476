"""Memory and precision guards (infwide/guards.py), tested from the public API.

Memory: a call whose input covariance alone cannot fit in free memory is refused at once with
a KernelMemoryError (a MemoryError) that gives the estimate and points to ``infwide.batch``.
The large inputs are ``np.broadcast_to`` views (one stored value), so the tests allocate
almost nothing; the fused-path tests shrink the "free memory" instead.

Precision: float32 overflow (large W_std, deep) and underflow (tiny W_std, deep) raise a
PrecisionError (a ValueError) naming the layer and suggesting float64; float64 works.
"""
import re
import time

import numpy as np
import pytest

from infwide import batch, models, stax
from infwide import device
from infwide.guards import KernelMemoryError, PrecisionError
from infwide.stax._fusion import fusion_disabled


def _refused_at_once(fn, *args):
    t0 = time.perf_counter()
    with pytest.raises(KernelMemoryError) as info:
        fn(*args)
    assert time.perf_counter() - t0 < 5.0, "the guard must refuse before computing"
    msg = str(info.value)
    assert isinstance(info.value, MemoryError)
    assert "infwide.batch" in msg and "GiB" in msg and "needs at least" in msg
    return msg


def test_cnn_gap_10k_unfused_refused_with_estimate():
    x = np.broadcast_to(np.float32(0.5), (10_000, 8, 8, 3))   # one float in memory
    net = models.CNN(2, readout="gap", channels=4)
    with fusion_disabled():
        msg = _refused_at_once(net.kernel_fn, x, None, "nngp")
    # 10^8 pairs x (8*8)^2 full spatial covariance x 4 bytes = 1,525.9 GiB
    assert "10000 x 10000" in msg and "1,525.9 GiB" in msg and "full spatial" in msg
    assert msg.startswith("serial(Conv")


def test_fc_300k_points_refused_with_estimate():
    x = np.broadcast_to(np.float32(0.5), (300_000, 10))
    with fusion_disabled():
        msg = _refused_at_once(models.FC(2).kernel_fn, x, None, ("nngp", "ntk"))
    # 9e10 pairs x 4 bytes x 2 (nngp and ntk) = 670.6 GiB
    assert "300000 x 300000" in msg and "670.6 GiB" in msg


def test_rectangular_x2_counts_both_batches():
    x1 = np.broadcast_to(np.float64(1.0), (200_000, 3))
    x2 = np.broadcast_to(np.float64(2.0), (150_000, 3))
    with fusion_disabled():
        msg = _refused_at_once(stax.serial(stax.Dense(4), stax.Relu()).kernel_fn, x1, x2, "nngp")
    assert "200000 x 150000" in msg and "223.5 GiB" in msg


PATHS = [pytest.param(False, id="unfused"), pytest.param(True, id="fused")]


@pytest.fixture
def little_memory(monkeypatch):
    """Pretend the host has 64 MiB free: a modest input then trips the guard."""
    monkeypatch.setattr(device, "available_memory", lambda devices=None: 64 * 2**20)


def test_unfused_guard_with_little_memory(little_memory):
    """100 images of 8x8 with GAP: the unfused route builds the pairs' full input covariance,
    100^2 x 64^2 x 8 bytes = 312.5 MiB at least."""
    x = np.random.default_rng(0).standard_normal((100, 8, 8, 2))
    net = models.CNN(1, readout="gap", channels=3)
    with fusion_disabled():
        msg = _refused_at_once(net.kernel_fn, x, None, "nngp")
    assert "0.3 GiB" in msg and "0.1 GiB free" in msg


def test_fused_guard_counts_what_the_fused_route_keeps(little_memory):
    """The fused route keeps each image's own full covariance, not the pairs': 100 images
    (3 MiB) compute under 64 MiB; 10,000 are refused (10^4 x 64^2 own entries and the
    10^4 x 10^4 result, 8 bytes each)."""
    net = models.CNN(1, readout="gap", channels=3)
    x = np.random.default_rng(0).standard_normal((100, 8, 8, 2))
    assert np.isfinite(net.kernel_fn(x, None, "nngp")).all()
    big = np.broadcast_to(np.float64(0.5), (10_000, 8, 8, 2))
    msg = _refused_at_once(net.kernel_fn, big, None, "nngp")
    expected = (10_000 * 64 ** 2 + 10_000 ** 2) * 8 / 2 ** 30
    assert f"{expected:,.1f} GiB" in msg and "0.1 GiB free" in msg


@pytest.mark.parametrize("fused", PATHS)
def test_fc_guard_on_every_path_with_little_memory(little_memory, fused):
    x = np.random.default_rng(0).standard_normal((6000, 4))   # 6000^2 x 8 x 2 = 549 MiB
    net = models.FC(2, W_std=1.3)
    if fused:
        _refused_at_once(net.kernel_fn, x, None, ("nngp", "ntk"))
    else:
        with fusion_disabled():
            _refused_at_once(net.kernel_fn, x, None, ("nngp", "ntk"))


def test_batch_computes_what_the_guard_refused(little_memory):
    """The advice works: infwide.batch with a budget computes what the plain call refused."""
    x = np.random.default_rng(1).standard_normal((6000, 4))[:300]
    net = models.FC(1, W_std=1.3)
    ref = net.kernel_fn(x, None, "nngp")
    out = batch(net, batch_size=100, executor=1)(x, None, "nngp")
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_small_calls_never_ask_for_memory(monkeypatch):
    def boom(devices=None):
        raise AssertionError("available_memory asked for a small call")
    monkeypatch.setattr(device, "available_memory", boom)
    x = np.random.default_rng(0).standard_normal((20, 5))
    assert np.isfinite(models.FC(2).kernel_fn(x, None, "ntk")).all()


# -- precision --------------------------------------------------------------------------------
def _deep_fc(w_std, depth=30):
    return stax.serial(*([stax.Dense(8, W_std=w_std), stax.Relu()] * depth), stax.Dense(1))


def _deep_cnn(w_std, depth=12):
    return stax.serial(*([stax.Conv(4, (3, 3), padding="SAME", W_std=w_std), stax.Relu()]
                         * depth), stax.GlobalAvgPool(), stax.Dense(1))


CASES = [
    ("fc-overflow", _deep_fc, 30.0, (4, 5), "float32 overflow", r"layer 15 \(Relu\)"),
    ("fc-underflow", _deep_fc, 0.01, (4, 5), "underflowed to zero", r"layer \d+ \(Dense"),
    ("cnn-overflow", _deep_cnn, 60.0, (3, 6, 6, 2), "float32 overflow", r"layer \d+ \(Relu\)"),
    ("cnn-underflow", _deep_cnn, 0.003, (3, 6, 6, 2), "underflowed to zero",
     r"layer \d+ \((Conv|Relu)"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_float32_out_of_range_named_float64_works(case, fused):
    _, make, w_std, shape, what, where = case
    x = np.random.default_rng(0).standard_normal(shape)
    net = make(w_std)
    for get in ("nngp", "ntk"):
        with pytest.raises(PrecisionError, match=what) as info:
            if fused:
                net.kernel_fn(x.astype(np.float32), None, get)
            else:
                with fusion_disabled():
                    net.kernel_fn(x.astype(np.float32), None, get)
        assert isinstance(info.value, ValueError)
        msg = str(info.value)
        assert "float64" in msg and re.search(where, msg), msg
    k = net.kernel_fn(x, x[:2], ("nngp", "ntk"))
    for m in k:
        assert m.dtype == np.float64 and np.isfinite(m).all() and np.abs(m).max() > 0
    if "under" in what:
        assert np.abs(k.nngp).max() < 1e-40   # it would have been below float32's range
    else:
        assert np.abs(k.nngp).max() > 1e30


def test_float32_moderate_depth_matches_float64():
    """The guard does not fire where float32 is fine (and float32 ~ float64 there)."""
    x = np.random.default_rng(0).standard_normal((4, 5))
    net = _deep_fc(2.0, depth=10)
    k32 = net.kernel_fn(x.astype(np.float32), None, "nngp")
    k64 = net.kernel_fn(x, None, "nngp")
    np.testing.assert_allclose(k32, k64, rtol=1e-4)


def test_non_finite_variances_are_refused_too():
    """Found by hypothesis: a network whose per-input variance (cov1) overflowed float32
    while its pair kernel stayed finite passed the guard, which looked at nngp and ntk only."""
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    k = stax.serial(stax.Dense(2), stax.Erf()).kernel_fn(x, x[:2])
    for field in ("cov1", "cov2"):
        bad = getattr(k, field).copy()
        bad[0] = np.inf
        with pytest.raises(PrecisionError, match=field):
            stax.serial(stax.Dense(2), stax.Dense(1)).kernel_fn(k.replace(**{field: bad}))


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_huge_x2_overflowing_its_variance_is_refused(fused):
    """x2 of size 3e19 in float32: its variance overflows (cov2), the pair kernel with a
    modest x1 does not; the call is refused naming cov2 and float64, and float64 works."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)) * 3e19
    layers = [stax.Dense(4), stax.Relu(), stax.Dense(4)] if fused else [stax.Dense(4)]
    net = stax.serial(*layers, stax.Erf(), stax.Dense(1))
    with pytest.raises(PrecisionError, match="cov2.*float64"):
        net.kernel_fn(x1.astype(np.float32), x2.astype(np.float32))
    k = net.kernel_fn(x1, x2)
    assert np.isfinite(k.nngp).all() and np.isfinite(k.cov2).all()
