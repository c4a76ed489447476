"""Memory budget of infwide.batch: the tile-size arithmetic, the working-memory model against
tracemalloc, the measured fallback for hungry layers, and the budget holding end to end;
progress reports."""
import io
import tracemalloc

import numpy as np
import pytest

from infwide import batch, device, stax
from infwide.batching import _memory
from infwide.batching._progress import Progress


def net():
    return stax.serial(stax.Dense(64, W_std=1.5, b_std=0.3), stax.Relu(),
                       stax.Dense(32, W_std=1.2, b_std=0.1), stax.Relu(), stax.Dense(4))


NET = net()


def traced_peak(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        out = fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def hungry_kernel_fn(x1, x2=None, get=None):
    """A kernel function whose layers would keep 60 extra values per pair alive (as a
    quadrature with 60 nodes might): the shape model cannot know that."""
    n2 = len(x1) if x2 is None else len(x2)
    scratch = np.ones((len(x1), n2, 60))
    out = NET.kernel_fn(x1, x2, get)
    scratch.sum()
    return out


def test_choose_tile_is_largest_within_budget():
    for model in [(96, 152), (24576, 24704), (1e6, 3e6)]:
        for budget in [3e4, 1e6, 7.7e7, 1e9]:
            for n1, n2 in [(1000, 1000), (5000, 7), (3, 4000), (2, 2)]:
                if _memory.tile_bytes(1, 1, model) > budget:
                    with pytest.raises(MemoryError, match="budget"):
                        _memory.choose_tile(n1, n2, model, budget)
                    continue
                b1, b2 = _memory.choose_tile(n1, n2, model, budget)
                assert 1 <= b1 <= n1 and 1 <= b2 <= n2
                assert _memory.tile_bytes(b1, b2, model) <= budget
                grow1 = b1 == n1 or _memory.tile_bytes(b1 + 1, b2, model) > budget
                grow2 = b2 == n2 or _memory.tile_bytes(b1, b2 + 1, model) > budget
                assert grow1 or grow2, (model, budget, n1, n2, b1, b2)


def test_parse_budget():
    assert _memory.parse_budget("512MB") == 512_000_000
    assert _memory.parse_budget("2GiB") == 2 * 2 ** 30
    assert _memory.parse_budget(1e6) == 1_000_000
    for bad in ("-1", "10 parsecs", 0, -5, float("nan"), True):
        with pytest.raises(ValueError, match="memory_budget"):
            _memory.parse_budget(bad)
    assert device.available_memory() > 0


def cnn_gap():
    return stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                       stax.AvgPool((2, 2)), stax.Conv(8, (2, 2), padding="SAME"), stax.Relu(),
                       stax.GlobalAvgPool(), stax.Dense(1))


@pytest.mark.parametrize("shape,full,n,kind", [((9,), False, 60, "fc"),
                                               ((5, 4, 3), True, 30, "fc"),
                                               ((6, 6, 2), True, 16, "cnn")],
                         ids=["fc", "full-spatial", "cnn-gap"])
def test_model_bounds_traced_peak(shape, full, n, kind):
    """The shape model (LIVE tensors per entry) covers what one tile really allocates."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((n,) + shape), rng.standard_normal((n * 2 // 3,) + shape)
    fn = NET.kernel_fn if kind == "fc" else cnn_gap().kernel_fn
    out_shape = (1,) + shape[:-1] + (4,) if kind == "fc" else (1, 1)
    model = _memory.pair_model(x1.shape, out_shape, full, 8)
    for a, b in ((x1, x2), (x1, None), (x1[:7], x2[:n // 2 + 1])):
        fn(a, b)  # warm up: lazy imports and JIT compilation are not working memory
        peak, k = traced_peak(fn, a, b)
        assert k.nngp.ndim == (6 if full and kind == "fc" else 2)
        n2 = len(a) if b is None else len(b)
        assert k.nngp.nbytes + k.ntk.nbytes <= peak <= _memory.tile_bytes(len(a), n2, model)


def test_measured_fallback_for_hungry_layers():
    x = np.random.default_rng(1).standard_normal((300, 9))
    model = _memory.pair_model(x.shape, (1, 4), False, 8)
    per_pair, fixed = _memory.measured_pair_bytes(hungry_kernel_fn, x, None, None, {}, model)
    assert 60 * 8 <= per_pair <= 2 * (60 * 8 + model[0]) and fixed < 1e5
    budget = 2_000_000
    f = batch(hungry_kernel_fn, memory_budget=budget, executor=1)
    tiles = f.tiles(x)
    big = max(tiles, key=lambda t: t.n_pairs)
    a = x[big.rows[0]:big.rows[1]]
    b = x[big.cols[0]:big.cols[1]]
    peak, _ = traced_peak(hungry_kernel_fn, a, b)
    assert peak <= budget / 2  # one worker + the tile being placed
    assert len(tiles) > 1
    # measuring is skipped while the caller traces (its peak must not be reset)
    tracemalloc.start()
    try:
        assert _memory.measured_pair_bytes(hungry_kernel_fn, x, None, None, {}, model) is None
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape,n,budget", [((9,), 400, 1_000_000), ((4, 4, 2), 30, 6_000_000)],
                         ids=["fc", "full-spatial"])
def test_budget_holds_end_to_end(shape, n, budget):
    """Peak traced memory of a whole batched computation, minus the result it returns, stays
    within the budget; the budget forced many tiles; the result is the unbatched one."""
    x = np.random.default_rng(2).standard_normal((n,) + shape)
    f = batch(NET, memory_budget=budget, executor=2, progress=io.StringIO())
    f(x[:3])  # warm up
    log = io.StringIO()
    f.progress = log
    peak, k = traced_peak(f, x)
    result_bytes = k.nngp.nbytes + k.ntk.nbytes + k.cov1.nbytes
    assert peak - result_bytes <= budget
    total = int(log.getvalue().strip().splitlines()[-1].split("/")[1].split()[0])
    assert total >= 6
    ref = NET.kernel_fn(x)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(k.ntk[off], ref.ntk[off], rtol=1e-12)


def test_progress_reports_rate_and_time_left():
    log = io.StringIO()
    p = Progress(10, initial=2, stream=log, interval=0.0)
    for _ in range(8):
        p.update()
    p.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 8 and "\r" not in log.getvalue()
    assert lines[0].startswith("infwide.batch: 3/10 tiles (30%), ")
    assert "tiles/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("infwide.batch: 10/10 tiles (100%)") and "0:00 left" in lines[-1]
    quiet = io.StringIO()
    p = Progress(100, stream=quiet, interval=3600.0)
    for _ in range(50):
        p.update()
    assert len(quiet.getvalue().splitlines()) == 1  # rate-limited


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal():
    out = _Tty()
    p = Progress(4, stream=out, use_tqdm=False, interval=0.0)
    for _ in range(4):
        p.update()
    p.close()
    assert out.getvalue().count("\r") == 4 and out.getvalue().endswith("\n")
    pytest.importorskip("tqdm")
    out = _Tty()
    p = Progress(4, stream=out)
    assert p.mode == "tqdm"
    for _ in range(4):
        p.update()
    p.close()
    assert "4/4" in out.getvalue()
