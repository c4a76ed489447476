"""Faults injected into stored computations (infwide.batch store=DIR), beyond
tests/batching/test_store.py (one SIGKILL after 4 tiles, one failing write at tile 3, one
flipped and one truncated tile): SIGKILL at random points (seeded, including inside tile writes and the
final assembly), a failing write at a random tile and in random ways, random corruption of
random tiles, a torn journal, a truncated or missing manifest. Each time the store stays
consistent (every tile it lists verifies), resumes, loses nothing it had finished, and the
result equals the uninterrupted one bit for bit."""
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from infwide import batch, stax
from infwide.batching import _store

HERE = os.path.dirname(os.path.abspath(__file__))
N, BS = 14, 4                      # 4 x 4 blocks, symmetric: 10 tiles
N_TILES = 10
KILL_SEEDS = range(10)
WRITE_SEEDS = range(6)
CORRUPT_SEEDS = range(8)


def net():
    return stax.serial(stax.Dense(32, W_std=1.5, b_std=0.3), stax.Relu(),
                       stax.Dense(8, W_std=1.2, b_std=0.1), stax.Erf(), stax.Dense(2))


def data(n=N):
    return np.random.default_rng(21).standard_normal((n, 5))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted stored computation, and the plain in-memory batched one."""
    store = str(tmp_path_factory.mktemp("ref") / "s")
    stored = batch(net(), batch_size=BS, store=store, executor=1)(data())
    plain = batch(net(), batch_size=BS, executor=1)(data())
    for f in ("nngp", "ntk", "cov1"):
        np.testing.assert_array_equal(np.asarray(getattr(stored, f)), getattr(plain, f))
    return {f: np.array(getattr(plain, f)) for f in ("nngp", "ntk", "cov1")}


def _manifest(store):
    with open(os.path.join(store, "manifest.json")) as f:
        return json.load(f)


def _listed(store):
    """Tiles the store vouches for (manifest and complete journal lines), with their SHA."""
    tiles = dict(_manifest(store)["tiles"]) if os.path.exists(
        os.path.join(store, "manifest.json")) else {}
    jp = os.path.join(store, "journal.jsonl")
    if os.path.exists(jp):
        with open(jp, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    tiles[rec["key"]] = {"sha256": rec["sha256"]}
                except (ValueError, KeyError):
                    pass
    return tiles


def assert_consistent(store):
    """Every listed tile is on disk and hashes to its listed SHA-256."""
    for key, rec in _listed(store).items():
        path = os.path.join(store, "tiles", f"{key}.tile")
        assert _store.read_tile_file(path, rec["sha256"]) is not None, f"tile {key} is listed " \
            "but missing or corrupt"


def resume_and_check(store, reference, reused_at_least=0):
    before = {k: os.stat(os.path.join(store, "tiles", f"{k}.tile")).st_mtime_ns
              for k in _listed(store)}
    out = batch(net(), batch_size=BS, store=store, executor=2)(data())
    for f, r in reference.items():
        np.testing.assert_array_equal(np.asarray(getattr(out, f)), r)
    m = _manifest(store)
    run = m["runs"][-1]
    if run["reused"] + run["computed"] == 0:   # served from the assembled result
        assert run["finished"] and m["result"]["complete"] and len(before) == N_TILES
    else:
        assert run["finished"] and run["reused"] + run["computed"] == N_TILES
        assert run["reused"] >= max(reused_at_least, len(before))
    assert len(m["tiles"]) == N_TILES and not os.path.exists(os.path.join(store, "journal.jsonl"))
    after = {k: os.stat(os.path.join(store, "tiles", f"{k}.tile")).st_mtime_ns for k in before}
    assert after == before, "a finished tile was rewritten"
    assert not [n for d in ("tiles", "result", ".") for n in os.listdir(os.path.join(store, d))
                if n.startswith(".tmp-")]
    return run


# -- SIGKILL at a random point ----------------------------------------------------------------
CHILD = """
import sys, time, random
sys.path.insert(0, {here!r})
import infwide.batching._store as st
from infwide import batch
from test_faults_store import net, data, BS
rnd = random.Random({seed})
write = st._write_stream
def slow_write(f, arrays):          # slow, and split, so that kills land inside writes too
    f.write(st._MAGIC)
    time.sleep(rnd.uniform(0, 0.06))
    st_rest = arrays
    write(_Skip(f), st_rest)
    time.sleep(rnd.uniform(0, 0.06))
class _Skip:                         # the magic is written already: drop its second copy
    def __init__(self, f): self.f, self.first = f, True
    def write(self, b):
        if self.first:
            self.first = False
            return len(b)
        return self.f.write(b)
st._write_stream = slow_write
print("start", flush=True)
batch(net(), batch_size=BS, store={store!r}, executor=1)(data())
print("finished", flush=True)
"""


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_sigkill_at_random_point_then_resume(tmp_path, reference, seed):
    rnd = random.Random(seed)
    store = str(tmp_path / "s")
    # journal lines to wait for (N_TILES: all tiles done, the kill lands in assembly or close)
    target = min(rnd.randint(0, N_TILES + 2), N_TILES)
    extra = rnd.uniform(0.0, 0.12)
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(here=HERE, store=store,
                                                                  seed=seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"start", proc.stderr.read()
    journal, deadline = os.path.join(store, "journal.jsonl"), time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(journal) and open(journal, "rb").read().count(b"\n") >= target:
            break
        time.sleep(0.005)
    time.sleep(extra)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    if target < N_TILES:
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    print(f"seed {seed}: killed after {target} journal lines + {extra:.3f} s, "
          f"rc {proc.returncode}")
    if os.path.exists(os.path.join(store, "manifest.json")):
        assert_consistent(store)
        finished = len(_listed(store))
    else:   # killed before the store was created
        finished = 0
    resume_and_check(store, reference, reused_at_least=finished)


# -- a failing write at a random tile -----------------------------------------------------------
FAILURES = {
    "ENOSPC-before": lambda f, arrays, write: _raise(errno.ENOSPC),
    "ENOSPC-partial": lambda f, arrays, write: (f.write(b"INFWIDE-TILE 1\n[\"nn"),
                                                _raise(errno.ENOSPC)),
    "EIO-after": lambda f, arrays, write: (write(f, arrays), _raise(errno.EIO)),
}


def _raise(code):
    raise OSError(code, os.strerror(code))


@pytest.mark.parametrize("seed", WRITE_SEEDS)
def test_failing_write_at_random_tile(tmp_path, monkeypatch, reference, seed):
    rnd = random.Random(100 + seed)
    store = str(tmp_path / "s")
    fail_at = rnd.randint(1, N_TILES)
    how = rnd.choice(sorted(FAILURES))
    write, calls = _store._write_stream, []

    def failing(f, arrays):
        calls.append(1)
        if len(calls) == fail_at:
            FAILURES[how](f, arrays, write)
        write(f, arrays)

    monkeypatch.setattr(_store, "_write_stream", failing)
    with pytest.raises(OSError, match="could not write tile"):
        batch(net(), batch_size=BS, store=store, executor=1)(data())
    monkeypatch.setattr(_store, "_write_stream", write)
    assert_consistent(store)
    m = _manifest(store)
    assert len(m["tiles"]) == fail_at - 1 and m["runs"][-1]["finished"] is False
    run = resume_and_check(store, reference, reused_at_least=fail_at - 1)
    assert run["computed"] == N_TILES - (fail_at - 1)


def test_failing_journal_write_keeps_store_consistent(tmp_path, monkeypatch, reference):
    """The journal append (after the tile file is in place) fails: the error surfaces, the
    tile is not trusted without its record, and a rerun completes."""
    store = str(tmp_path / "s")
    record, calls = _store.TileStore.record, []

    def failing(self, meta):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(errno.EIO, "Input/output error")
        record(self, meta)

    monkeypatch.setattr(_store.TileStore, "record", failing)
    with pytest.raises(OSError, match="Input/output"):
        batch(net(), batch_size=BS, store=store, executor=1)(data())
    monkeypatch.setattr(_store.TileStore, "record", record)
    assert_consistent(store)
    assert len(_listed(store)) == 3
    resume_and_check(store, reference, reused_at_least=3)


# -- corrupted tiles, journal, manifest ---------------------------------------------------------
def _corrupt(path, rnd):
    size = os.path.getsize(path)
    how = rnd.choice(["flip", "flip-header", "truncate", "empty", "delete", "append"])
    if how == "delete":
        os.remove(path)
    elif how == "empty":
        open(path, "wb").close()
    elif how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(rnd.randint(1, size - 1))
    elif how == "append":
        with open(path, "ab") as f:
            f.write(b"\0" * rnd.randint(1, 64))
    else:
        pos = rnd.randint(0, 20) if how == "flip-header" else rnd.randint(0, size - 1)
        with open(path, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ (1 << rnd.randint(0, 7))]))
    return how


@pytest.mark.parametrize("seed", CORRUPT_SEEDS)
def test_random_corruption_of_random_tiles(tmp_path, reference, seed):
    rnd = random.Random(200 + seed)
    store = str(tmp_path / "s")
    batch(net(), batch_size=BS, store=store, executor=1)(data())
    keys = sorted(_manifest(store)["tiles"])
    bad = rnd.sample(keys, rnd.randint(1, 3))
    for k in bad:
        _corrupt(os.path.join(store, "tiles", f"{k}.tile"), rnd)
    if rnd.random() < 0.5:   # another tile's file in place of one (valid bytes, wrong tile)
        a, b = rnd.sample([k for k in keys if k not in bad], 2)
        os.replace(os.path.join(store, "tiles", f"{a}.tile"),
                   os.path.join(store, "tiles", f"{b}.tile"))
        bad += [a, b]
    for name in os.listdir(os.path.join(store, "result")):   # re-assemble from the tiles
        os.remove(os.path.join(store, "result", name))
    out = batch(net(), batch_size=BS, store=store, executor=1)(data())
    for f, r in reference.items():
        np.testing.assert_array_equal(np.asarray(getattr(out, f)), r)
    run = _manifest(store)["runs"][-1]
    assert (run["computed"], run["reused"]) == (len(bad), N_TILES - len(bad))
    assert_consistent(store)


def test_corrupted_result_file_is_reassembled(tmp_path, reference):
    store = str(tmp_path / "s")
    batch(net(), batch_size=BS, store=store, executor=1)(data())
    with open(os.path.join(store, "result", "ntk.npy"), "r+b") as f:
        f.truncate(64)
    out = batch(net(), batch_size=BS, store=store, executor=1)(data())
    np.testing.assert_array_equal(np.asarray(out.ntk), reference["ntk"])


@pytest.mark.parametrize("cut,reused", [(1, 5), (17, 5), (-3, 5), (-9, 5), (-1, 6)])
def test_torn_journal_line_recomputes_only_that_tile(tmp_path, reference, cut, reused):
    """A crash mid-append leaves a torn last journal line: that tile is recomputed, the
    others are reused (a line that lost only its newline is still whole JSON with a SHA-256
    that verifies: reused)."""
    store = str(tmp_path / "s")
    _killed_store(store, tiles=6)
    jp = os.path.join(store, "journal.jsonl")
    lines = open(jp, "rb").read().splitlines(keepends=True)
    assert len(lines) == 6
    last = lines[-1]
    with open(jp, "wb") as f:
        f.write(b"".join(lines[:-1]) + last[:cut])
    run = resume_and_check(store, reference, reused_at_least=5)
    assert run["reused"] == reused


def _killed_store(store, tiles):
    """A store left as a crash after ``tiles`` tiles leaves it: manifest without them, the
    journal listing them (made by stopping the writer, not by a subprocess, to be quick)."""
    write, calls = _store._write_stream, []

    def stop(f, arrays):
        calls.append(1)
        if len(calls) > tiles:
            raise KeyboardInterrupt   # not an OSError: like a kill, no cleanup by the store
        write(f, arrays)

    _store._write_stream = stop
    try:
        with pytest.raises(KeyboardInterrupt):
            batch(net(), batch_size=BS, store=store, executor=1)(data())
    finally:
        _store._write_stream = write
    # a kill would not have merged the journal: rebuild it from the manifest the close wrote
    m = _manifest(store)
    recs = [{"key": k, "sha256": v["sha256"], "bytes": v["bytes"]} for k, v in m["tiles"].items()]
    m["tiles"] = {}
    with open(os.path.join(store, "manifest.json"), "w") as f:
        json.dump(m, f)
    with open(os.path.join(store, "journal.jsonl"), "wb") as f:
        f.write(b"".join((json.dumps(r) + "\n").encode() for r in recs))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_damaged_manifest_is_refused_and_nothing_is_lost(tmp_path, reference, damage):
    """The manifest is only ever replaced atomically, so a damaged one means outside
    interference: the store refuses (naming the file and the way out) and deletes nothing;
    restoring the manifest resumes with every tile."""
    store = str(tmp_path / "s")
    _killed_store(store, tiles=4)
    mp = os.path.join(store, "manifest.json")
    good = open(mp, "rb").read()
    with open(mp, "wb") as f:
        f.write({"truncated": good[: len(good) // 2], "empty": b"",
                 "garbage": b"\x00\xff" * 20}[damage])
    files = sorted(os.listdir(os.path.join(store, "tiles")))
    with pytest.raises(ValueError, match="manifest.json is not a readable store manifest"):
        batch(net(), batch_size=BS, store=store, executor=1)(data())
    assert sorted(os.listdir(os.path.join(store, "tiles"))) == files
    assert os.path.exists(os.path.join(store, "journal.jsonl"))
    with open(mp, "wb") as f:
        f.write(good)
    resume_and_check(store, reference, reused_at_least=4)


def test_missing_manifest_starts_over_and_ignores_stale_journal(tmp_path, reference):
    """Without a manifest the journal cannot be checked against a fingerprint: it is dropped
    and every tile recomputed (never trusted blindly)."""
    store = str(tmp_path / "s")
    _killed_store(store, tiles=4)
    os.remove(os.path.join(store, "manifest.json"))
    out = batch(net(), batch_size=BS, store=store, executor=1)(data())
    for f, r in reference.items():
        np.testing.assert_array_equal(np.asarray(getattr(out, f)), r)
    assert _manifest(store)["runs"][-1]["computed"] == N_TILES
