"""The resumable store of infwide.batch: kill and resume, refusals, corrupt tiles, failing
writes, memory-mapped results, stable network descriptions."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from infwide import stax, batch
from infwide.batching import describe, clear_store
from infwide.batching import _store
from infwide.batching._store import TileStore

HERE = os.path.dirname(os.path.abspath(__file__))


def store_net(w_std=1.5):
    return stax.serial(stax.Dense(64, W_std=w_std, b_std=0.3), stax.Relu(),
                       stax.Dense(16, W_std=1.2, b_std=0.1), stax.Relu(), stax.Dense(4))


def store_data(n=26):
    return np.random.default_rng(11).standard_normal((n, 5))


def manifest(path):
    with open(os.path.join(path, "manifest.json")) as f:
        return json.load(f)


def recorded_keys(path):
    """Tiles the store vouches for: in the manifest or in complete journal lines."""
    keys = set(manifest(path)["tiles"])
    jp = os.path.join(path, "journal.jsonl")
    if os.path.exists(jp):
        with open(jp, "rb") as f:
            for line in f:
                try:
                    keys.add(json.loads(line)["key"])
                except ValueError:
                    pass
    return keys


def tile_mtimes(path, keys):
    return {k: os.stat(os.path.join(path, "tiles", f"{k}.tile")).st_mtime_ns for k in keys}


def assert_kernel_equal(out, ref):
    for f in ("nngp", "ntk", "cov1"):
        o, r = np.asarray(getattr(out, f)), getattr(ref, f)
        np.testing.assert_allclose(o, r, rtol=1e-7, atol=1e-14)  # diagonal: see test_batch
        off = ~np.eye(len(r), dtype=bool) if r.ndim == 2 else slice(None)
        np.testing.assert_allclose(o[off], r[off], rtol=1e-12, atol=1e-14)


CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import infwide.batching._store as st
from infwide import batch
from test_store import store_net, store_data
write = st._write_stream
def slow_write(f, arrays):
    write(f, arrays)
    time.sleep(0.25)
st._write_stream = slow_write
batch(store_net(), batch_size=4, store={store!r}, executor=1)(store_data())
print("finished")
"""


def test_sigkill_then_resume(tmp_path):
    """A computation killed with SIGKILL resumes: the tiles it finished are reused (their
    files untouched), only the others are computed, and the result is the unbatched one."""
    store = str(tmp_path / "store")
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(here=HERE, store=store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    journal = os.path.join(store, "journal.jsonl")
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(journal) and open(journal, "rb").read().count(b"\n") >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    finished = recorded_keys(store)
    n_tiles = 7 * 8 // 2  # 26 points in blocks of 4 -> 7 blocks, upper triangle
    assert 4 <= len(finished) < n_tiles
    before = tile_mtimes(store, finished)

    out = batch(store_net(), batch_size=4, store=store, executor=2)(store_data())
    assert_kernel_equal(out, store_net().kernel_fn(store_data()))
    m = manifest(store)
    assert m["runs"][-1] == dict(m["runs"][-1], reused=len(finished),
                                 computed=n_tiles - len(finished), finished=True)
    assert len(m["tiles"]) == n_tiles and not os.path.exists(journal)
    assert tile_mtimes(store, finished) == before
    # the assembled result is a set of .npy files, opened as memory maps
    assert isinstance(out.nngp, np.memmap)
    mm = np.lib.format.open_memmap(os.path.join(store, "result", "ntk.npy"), mode="r")
    np.testing.assert_array_equal(mm, out.ntk)


def test_refuses_other_inputs_network_get(tmp_path):
    x = store_data(9)
    store = tmp_path / "s"
    batch(store_net(), batch_size=4, store=store)(x, None, "nngp")
    x_other = x.copy()
    x_other[3, 2] += 1e-9
    with pytest.raises(ValueError, match=r"made for other inputs \(`x1` differs\)"):
        batch(store_net(), batch_size=4, store=store)(x_other, None, "nngp")
    with pytest.raises(ValueError, match="made for other inputs"):
        batch(store_net(), batch_size=4, store=store)(x, x[:3], "nngp")
    with pytest.raises(ValueError, match="made for another network"):
        batch(store_net(w_std=1.5000001), batch_size=4, store=store)(x, None, "nngp")
    with pytest.raises(ValueError, match="made for another `get`"):
        batch(store_net(), batch_size=4, store=store)(x, None, "ntk")
    with pytest.raises(ValueError, match="made for other inputs"):
        batch(store_net(), batch_size=4, store=store)(x.astype(np.float32), None, "nngp")
    # the same request is served from the store
    again = batch(store_net(), batch_size=4, store=store)(x, None, "nngp")
    assert manifest(store)["runs"][-1]["computed"] == 0
    np.testing.assert_allclose(again, store_net().kernel_fn(x, None, "nngp"), rtol=1e-7)
    # a different batch size resumes with the tiles the store was started with
    batch(store_net(), batch_size=2, store=store)(x, None, "nngp")
    clear_store(store)
    assert not os.listdir(store)


def test_corrupt_and_truncated_tiles_are_recomputed(tmp_path):
    x = store_data(11)
    store = str(tmp_path / "s")
    ref = batch(store_net(), batch_size=4, store=store)(x, x[:7])
    keys = sorted(manifest(store)["tiles"])
    assert len(keys) == 3 * 2
    p0, p1 = (os.path.join(store, "tiles", f"{k}.tile") for k in keys[:2])
    with open(p0, "r+b") as f:  # flip one byte in the data
        f.seek(-3, os.SEEK_END)
        b = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x5A]))
    with open(p1, "r+b") as f:  # truncate
        f.truncate(os.path.getsize(p1) // 2)
    for name in os.listdir(os.path.join(store, "result")):  # force re-assembly from tiles
        os.remove(os.path.join(store, "result", name))
    out = batch(store_net(), batch_size=4, store=store)(x, x[:7])
    run = manifest(store)["runs"][-1]
    assert (run["computed"], run["reused"]) == (2, 4)
    for f in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_array_equal(getattr(out, f), getattr(ref, f))
    np.testing.assert_allclose(out.ntk, store_net().kernel_fn(x, x[:7], "ntk"), rtol=1e-12)


def test_failing_write_keeps_store_consistent(tmp_path, monkeypatch):
    """A full disk (OSError from the writer) on the third tile: the error names the tile, no
    temporary file is left, the store lists only good tiles, and a rerun finishes the job."""
    x = store_data(10)
    store = str(tmp_path / "s")
    write, calls = _store._write_stream, []

    def failing(f, arrays):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        write(f, arrays)

    monkeypatch.setattr(_store, "_write_stream", failing)
    with pytest.raises(OSError, match=r"could not write tile \S+ \(x1\[\d+:\d+\].*No space left"):
        batch(store_net(), batch_size=4, store=store, executor=1)(x)
    monkeypatch.setattr(_store, "_write_stream", write)
    m = manifest(store)
    assert len(m["tiles"]) == 2 and m["runs"][-1]["finished"] is False
    for k, rec in m["tiles"].items():
        assert _store.read_tile_file(os.path.join(store, "tiles", f"{k}.tile"),
                                     rec["sha256"]) is not None
    assert not [n for n in os.listdir(os.path.join(store, "tiles")) if n.startswith(".tmp")]
    out = batch(store_net(), batch_size=4, store=store)(x)
    assert manifest(store)["runs"][-1]["reused"] == 2
    assert_kernel_equal(out, store_net().kernel_fn(x))


def test_store_is_locked_while_in_use(tmp_path):
    fp = {"x1": None}
    layout = {"row_edges": [0, 1], "col_edges": [0, 1], "symmetric": True}
    held = TileStore(tmp_path, fp, layout)
    with pytest.raises(OSError, match="in use by another computation"):
        TileStore(tmp_path, fp, layout)
    held.close(finished=True)
    TileStore(tmp_path, fp, layout).close(finished=True)


def test_describe_is_stable_and_sensitive():
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from test_store import store_net\n"
            "from infwide.batching import describe\n"
            "print(describe(store_net().kernel_fn))" % HERE)
    texts = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60).stdout for _ in range(2)}
    assert len(texts) == 1
    text = texts.pop().strip()
    assert text == describe(store_net().kernel_fn) == describe(store_net())
    assert "0x" not in text and "W_std" in text
    assert describe(store_net(1.6)) != text
    relu = describe(stax.serial(stax.Dense(3), stax.Relu()))
    assert relu != describe(stax.serial(stax.Dense(3), stax.LeakyRelu(0.1)))
    assert relu != describe(stax.serial(stax.Dense(3, parameterization="standard"), stax.Relu()))
    assert describe(batch(store_net(), batch_size=3)) == text
    # user functions are told apart by their code, not only by their (lambda) names
    tanh = stax.ElementwiseNumerical(lambda x: np.tanh(x), deg=10)
    sin = stax.ElementwiseNumerical(lambda x: np.sin(x), deg=10)
    assert describe(tanh) != describe(sin)
    assert describe(stax.ElementwiseNumerical(lambda x: np.tanh(x), deg=10)) == describe(tanh)
