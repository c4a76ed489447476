"""A resumable store of kernel tiles in a folder.

Layout of ``store/``::

    manifest.json   fingerprint (inputs, network, get, dtype), tile layout, per-tile SHA-256,
                    a record of each run, and the assembled result once complete
    journal.jsonl   tiles finished since the manifest was last written (one JSON line each,
                    appended and fsync'ed after the tile file is in place); merged into the
                    manifest at the end of every run, and on the next open after a crash
    tiles/<key>.tile   one finished tile: a header line, then its arrays in .npy format
    result/<field>.npy the assembled result, opened as read-only memory maps
    lock            held (flock) while a computation runs

Every file is written to a temporary name in the same folder, flushed, fsync'ed and moved into
place with ``os.replace``, so a killed run leaves either the old file or the new one. A tile is
trusted only if it is listed (manifest or journal) and its bytes hash to the listed SHA-256;
anything else is recomputed.
"""
import datetime
import hashlib
import json
import os
import uuid

import numpy as np

from ._describe import describe, hash_array, sha256_text

__all__ = ["TileStore", "write_tile_file", "make_fingerprint", "clear_store"]

FORMAT = "infwide-batch-store"
VERSION = 1
_MAGIC = b"INFWIDE-TILE 1\n"
_CHUNK = 1 << 22
_CHECKED = (("x1", "other inputs (`x1` differs)"), ("x2", "other inputs (`x2` differs)"),
            ("network_sha256", "another network (layers or hyper-parameters differ)"),
            ("kwargs", "other keyword arguments to kernel_fn"), ("get", "another `get`"),
            ("dtype", "another dtype"))


def make_fingerprint(kernel_fn, x1, x2, get_names, kwargs, dtype):
    """What a store must match to be reused: inputs, network, kwargs, get and dtype."""
    net = describe(kernel_fn)
    arr = lambda x: None if x is None else {"sha256": hash_array(x), "shape": list(x.shape),
                                           "dtype": str(x.dtype)}
    return {"x1": arr(x1), "x2": arr(x2), "network": net, "network_sha256": sha256_text(net),
            "kwargs": describe(kwargs), "get": None if get_names is None else list(get_names),
            "dtype": np.dtype(dtype).str}


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, f):
        self.f, self.sha, self.n = f, hashlib.sha256(), 0

    def write(self, data):
        data = memoryview(data).cast("B")
        self.sha.update(data)
        self.n += len(data)
        return self.f.write(data)


def _write_stream(f, arrays):
    """Write a tile's header and arrays to ``f`` (the writer the tests make fail)."""
    f.write(_MAGIC)
    f.write((json.dumps(sorted(arrays)) + "\n").encode())
    for name in sorted(arrays):
        np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def _atomic_write(path, writer, payload):
    """Write through ``writer(stream, payload)`` to ``path`` atomically; ``(sha256, bytes)``."""
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".tmp-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            hw = _HashingWriter(f)
            writer(hw, payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)
    return hw.sha.hexdigest(), hw.n


def write_tile_file(directory, tile, arrays):
    """Write one tile (host arrays) into ``directory/tiles``; its journal record.

    Runs wherever the tile was computed (a local thread or a dask worker sharing the folder).
    """
    path = os.path.join(directory, "tiles", f"{tile.key}.tile")
    try:
        sha, n = _atomic_write(path, _write_stream, arrays)
    except OSError as e:
        raise OSError(f"batch: could not write {tile.describe()} to {path}: {e}. The store is "
                      "unchanged for this tile; free space and run again to resume.") from e
    return {"key": tile.key, "sha256": sha, "bytes": n}


def _write_json(f, obj):
    f.write(json.dumps(obj, indent=1, sort_keys=True).encode())


def read_tile_file(path, sha256):
    """The arrays of a tile file, or None if it is missing or its SHA-256 differs."""
    try:
        with open(path, "rb") as f:
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
            if h.hexdigest() != sha256:
                return None
            f.seek(0)
            if f.read(len(_MAGIC)) != _MAGIC:
                return None
            names = json.loads(f.readline())
            return {n: np.lib.format.read_array(f, allow_pickle=False) for n in names}
    except (OSError, ValueError):
        return None


def clear_store(directory):
    """Remove the files a store created in ``directory`` (and nothing else)."""
    for sub in ("tiles", "result"):
        folder = os.path.join(directory, sub)
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.endswith((".tile", ".npy")) or name.startswith(".tmp-"):
                    os.remove(os.path.join(folder, name))
            if not os.listdir(folder):
                os.rmdir(folder)
    for name in ("manifest.json", "journal.jsonl", "lock"):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            os.remove(p)


class TileStore:
    """The driver's view of a store folder; see the module docstring."""

    def __init__(self, directory, fingerprint, layout):
        self.dir = os.fspath(directory)
        os.makedirs(os.path.join(self.dir, "tiles"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "result"), exist_ok=True)
        self._lock_fd = self._lock()
        try:
            self._clean_temporaries()
            self.manifest = self._load_or_create(fingerprint, layout)
        except BaseException:
            self._unlock()
            raise
        self.tiles = dict(self.manifest["tiles"])
        self.tiles.update(self._read_journal())
        self._journal = open(os.path.join(self.dir, "journal.jsonl"), "ab")
        self.computed = self.reused = 0

    # -- opening ---------------------------------------------------------------------------
    def _lock(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return None
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise OSError(f"batch: the store {self.dir} is in use by another computation "
                          "(its lock is held); wait for it or use another `store` folder.") from e
        return fd

    def _clean_temporaries(self):
        for sub in ("tiles", "result", "."):
            folder = os.path.join(self.dir, sub)
            for name in os.listdir(folder):
                if name.startswith(".tmp-"):
                    os.remove(os.path.join(folder, name))

    def _load_or_create(self, fingerprint, layout):
        path = os.path.join(self.dir, "manifest.json")
        if not os.path.exists(path):
            if os.path.exists(os.path.join(self.dir, "journal.jsonl")):
                os.remove(os.path.join(self.dir, "journal.jsonl"))
            m = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint,
                 "layout": layout, "tiles": {}, "runs": [], "result": None}
            _atomic_write(path, _write_json, m)
            return m
        try:
            with open(path, "rb") as f:
                m = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"batch: {path} is not a readable store manifest ({e}); use another "
                             "`store` folder or delete this one to start over.") from e
        self._check(m, fingerprint, path)
        return m

    def _check(self, m, fingerprint, path):
        if m.get("format") != FORMAT or m.get("version") != VERSION:
            raise ValueError(f"batch: {path} is not an infwide store of format {FORMAT} "
                             f"version {VERSION}; use another `store` folder.")
        old = m["fingerprint"]
        for key, what in _CHECKED:
            if old.get(key) != fingerprint.get(key):
                raise ValueError(f"batch: the store {self.dir} was made for {what}; refusing to "
                                 "mix results. Use another `store` folder, or delete this one "
                                 "(infwide.batching.clear_store) to start over.")

    def _read_journal(self):
        path = os.path.join(self.dir, "journal.jsonl")
        out = {}
        if os.path.exists(path):
            with open(path, "rb") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        out[rec["key"]] = {"sha256": rec["sha256"], "bytes": rec["bytes"]}
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a crash: that tile is recomputed
        return out

    @property
    def layout(self):
        return self.manifest["layout"]

    # -- tiles -----------------------------------------------------------------------------
    def tile_path(self, key):
        return os.path.join(self.dir, "tiles", f"{key}.tile")

    def load(self, tile):
        """The verified arrays of a finished tile, or None (missing, torn or corrupt)."""
        rec = self.tiles.get(tile.key)
        if rec is None:
            return None
        arrays = read_tile_file(self.tile_path(tile.key), rec["sha256"])
        if arrays is None:
            del self.tiles[tile.key]
        return arrays

    def record(self, meta):
        """Journal a tile that a worker has written (driver side)."""
        self._journal.write((json.dumps(meta) + "\n").encode())
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self.tiles[meta["key"]] = {"sha256": meta["sha256"], "bytes": meta["bytes"]}

    # -- result ----------------------------------------------------------------------------
    def result_path(self, field):
        return os.path.join(self.dir, "result", f"{field}.npy")

    def open_complete_result(self):
        """Memory maps of a finished result, or None if this store has none yet."""
        res = self.manifest.get("result")
        if not res or not res.get("complete"):
            return None
        out = {}
        for field, spec in res["fields"].items():
            path = self.result_path(field)
            try:
                m = np.load(path, mmap_mode="r")
            except (OSError, ValueError):
                return None
            if list(m.shape) != spec["shape"] or m.dtype.str != spec["dtype"]:
                return None
            out[field] = m
        return out

    def create_result(self, shapes, dtype):
        """Writable memory maps (temporary names) for the fields being assembled."""
        self.manifest["result"] = None
        out = {}
        for field, shape in shapes.items():
            tmp = os.path.join(self.dir, "result", f".tmp-{field}.npy")
            out[field] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        return out

    def finish_result(self, maps):
        """Flush, move the result into place, and reopen it read-only."""
        spec = {}
        for field, m in maps.items():
            m.flush()
            tmp = m.filename
            spec[field] = {"shape": list(m.shape), "dtype": m.dtype.str}
            del m
            os.replace(tmp, self.result_path(field))
        maps.clear()
        _fsync_dir(os.path.join(self.dir, "result"))
        self.manifest["result"] = {"complete": True, "fields": spec}
        return {f: np.load(self.result_path(f), mmap_mode="r") for f in spec}

    # -- closing ---------------------------------------------------------------------------
    def close(self, finished):
        """Merge the journal into the manifest (atomically) and release the lock."""
        self.manifest["tiles"] = dict(sorted(self.tiles.items()))
        self.manifest["runs"].append({
            "ended": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "computed": self.computed, "reused": self.reused, "finished": bool(finished)})
        try:
            _atomic_write(os.path.join(self.dir, "manifest.json"), _write_json, self.manifest)
            self._journal.close()
            os.remove(os.path.join(self.dir, "journal.jsonl"))
        finally:
            if not self._journal.closed:
                self._journal.close()
            self._unlock()

    def _unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
