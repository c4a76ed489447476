"""Where tiles run: local threads (CPU cores or one per GPU) or a dask.distributed cluster.

No scheduler is built here beyond a local thread pool: NumPy, Numba (``nogil=True``) and CuPy
release the GIL, so threads run tiles in parallel. With a ``dask.distributed.Client`` each tile
is a task; the inputs are scattered to the workers once with ``client.scatter``; workers return
the tile's arrays, or, with a store, write the tile into the store folder themselves (it must
then be reachable from the workers, e.g. a shared file system) and return its checksum.
dask is optional (``pip install "infwide[distributed]"``) and imported only when used.
"""
import concurrent.futures
import os
import queue
import threading

import numpy as np

from ..backend import is_gpu_array
from ._plan import compute_tile
from ._store import write_tile_file

__all__ = ["resolve_executor", "connect", "LocalExecutor", "DaskExecutor", "DISTRIBUTED_HINT",
           "run_tile"]

DISTRIBUTED_HINT = 'install it with `pip install "infwide[distributed]"` (dask and distributed)'
_THREAD = threading.local()


def _import_distributed():
    try:
        import distributed
    except ImportError as e:
        raise ImportError("batch: a dask.distributed executor needs the optional `distributed` "
                          f"extra; {DISTRIBUTED_HINT}.") from e
    return distributed


def connect(address, timeout=10.0):
    """A ``dask.distributed.Client`` for the scheduler at ``address``, or an ``OSError``
    naming the address when nothing answers within ``timeout`` seconds."""
    distributed = _import_distributed()
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise OSError(f"batch: no dask scheduler answered at {address!r} within {timeout:g} s "
                      f"({type(e).__name__}: {e}). Start one with `dask scheduler` (and workers "
                      "with `dask worker ADDRESS`), or check the address.") from e


def _to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else a


def run_tile(kernel_fn, inputs, tile, get_is_none, kwargs, store_dir, return_arrays):
    """Compute one tile; with a store, also write it. ``(arrays or None, store record or None)``.

    A module-level function so that dask can ship it to workers.
    """
    arrays = compute_tile(kernel_fn, inputs, tile, get_is_none, kwargs)
    meta = None
    if store_dir is not None:
        host = {k: _to_host(v) for k, v in arrays.items()}
        meta = write_tile_file(store_dir, tile, host)
        if not return_arrays:
            return None, meta
        arrays = host
    return arrays, meta


def _set_device(devices):
    _THREAD.device = devices.get_nowait()


def _split_numba_threads(n_threads):
    """Give each worker thread its share of Numba's threads (the setting is per thread), so
    that ``n`` workers running parallel loops do not start ``n`` times all the cores."""
    import numba
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))


def _gpu_run_tile(device_inputs, kernel_fn, tile, get_is_none, kwargs, store_dir):
    import cupy
    dev = _THREAD.device
    with cupy.cuda.Device(dev):
        arrays, meta = run_tile(kernel_fn, device_inputs[dev], tile, get_is_none, kwargs,
                                store_dir, True)
        cupy.cuda.get_current_stream().synchronize()
    return arrays, meta


class LocalExecutor:
    """A thread pool: ``n_workers`` CPU threads, or one thread per GPU for CuPy inputs."""

    def __init__(self, n_workers=None, gpu_devices=None):
        self.gpu_devices = list(gpu_devices) if gpu_devices else None
        if self.gpu_devices:
            n_workers = len(self.gpu_devices)
        elif n_workers is None:
            n_workers = _cpu_count()
        self.n_workers = int(n_workers)
        self.window = self.n_workers
        self.stores_on_workers = False
        self._pool = None
        self._inputs = None

    def start(self, kernel_fn, inputs):
        self._kernel_fn = kernel_fn
        if self.gpu_devices:
            self._inputs = _copy_to_devices(inputs, self.gpu_devices)
            devs = queue.Queue()
            for d in self.gpu_devices:
                devs.put(d)
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.n_workers, thread_name_prefix="infwide-gpu", initializer=_set_device,
                initargs=(devs,))
        else:
            self._inputs = inputs
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.n_workers, thread_name_prefix="infwide-batch",
                initializer=_split_numba_threads,
                initargs=(max(1, _cpu_count() // self.n_workers),))

    def submit(self, tile, get_is_none, kwargs, store_dir):
        if self.gpu_devices:
            return self._pool.submit(_gpu_run_tile, self._inputs, self._kernel_fn, tile,
                                     get_is_none, kwargs, store_dir)
        return self._pool.submit(run_tile, self._kernel_fn, self._inputs, tile, get_is_none,
                                 kwargs, store_dir, True)

    def wait_first(self, pending):
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        return done

    def result(self, future):
        return future.result()

    def stop(self, cancel, pending=()):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
        self._pool = self._inputs = None


def _copy_to_devices(inputs, devices):
    """The inputs on every device (once per computation; through the host for other GPUs)."""
    import cupy
    out = {}
    for d in devices:
        with cupy.cuda.Device(d):
            out[d] = {k: _on_device(cupy, v, d) for k, v in inputs.items()}
    return out


def _on_device(cupy, v, d):
    if v is None or (not isinstance(v, np.ndarray) and v.device.id == d):
        return v
    return cupy.asarray(_to_host(v))


def _cpu_count():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class DaskExecutor:
    """Tiles as tasks of a ``dask.distributed.Client``; the inputs scattered once."""

    def __init__(self, client):
        self.client = client
        self._distributed = _import_distributed()
        info = client.scheduler_info()
        workers = info.get("workers", {})
        if not workers:
            raise ValueError("batch: the dask cluster has no workers; start some (`dask worker "
                             f"{client.scheduler.address}`) or wait for them before computing.")
        self.n_workers = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values())
        self.window = 2 * self.n_workers
        self.stores_on_workers = True
        self.gpu_devices = None
        self._inputs = self._finished = None
        limits = [w.get("memory_limit") or 0 for w in workers.values()]
        threads = [max(1, int(w.get("nthreads", 1))) for w in workers.values()]
        per = [l / t for l, t in zip(limits, threads) if l]
        self.memory_per_worker = int(min(per)) if per else None

    def start(self, kernel_fn, inputs):
        self._kernel_fn = kernel_fn
        keys = [k for k, v in inputs.items() if v is not None]
        futures = self.client.scatter([inputs[k] for k in keys], broadcast=True, hash=False)
        self._inputs = dict(zip(keys, futures))
        self._inputs.update({k: None for k, v in inputs.items() if v is None})
        self._finished = self._distributed.as_completed(loop=self.client.loop)

    def submit(self, tile, get_is_none, kwargs, store_dir):
        fut = self.client.submit(_dask_tile, self._kernel_fn, self._inputs, tile, get_is_none,
                                 kwargs, store_dir, store_dir is None, pure=False)
        self._finished.add(fut)
        return fut

    def wait_first(self, pending):
        """Finished futures (at least one), from an ``as_completed`` on this client's loop (so
        a client that is not the default one works)."""
        return {next(self._finished)}

    def result(self, future):
        return future.result()

    def stop(self, cancel, pending=()):
        """Cancel unfinished tiles on failure; dropping the last references to the scattered
        inputs releases them on the workers."""
        if cancel and pending:
            self.client.cancel(list(pending))
        self._inputs = self._finished = None


def _dask_tile(kernel_fn, inputs, tile, get_is_none, kwargs, store_dir, return_arrays):
    return run_tile(kernel_fn, inputs, tile, get_is_none, kwargs, store_dir, return_arrays)


def _is_dask_client(obj):
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] == "distributed" and hasattr(obj, "scatter") and hasattr(obj, "submit")


def _gpu_devices_for(x1):
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    first = x1.device.id
    return [first] + [d for d in range(n) if d != first]


def resolve_executor(executor, x1):
    """``None`` (all local CPU cores, or all local GPUs for CuPy inputs), an int (that many
    local threads) or a ``dask.distributed.Client``."""
    if executor is None:
        if is_gpu_array(x1):
            return LocalExecutor(gpu_devices=_gpu_devices_for(x1))
        return LocalExecutor()
    if isinstance(executor, (int, np.integer)) and not isinstance(executor, bool):
        if executor < 1:
            raise ValueError(f"batch: `executor` as a number of local workers must be >= 1, "
                             f"got {executor}.")
        if is_gpu_array(x1):
            return LocalExecutor(gpu_devices=_gpu_devices_for(x1)[:int(executor)])
        return LocalExecutor(n_workers=int(executor))
    if _is_dask_client(executor):
        return DaskExecutor(executor)
    raise TypeError("batch: `executor` must be None (all local devices), a number of local "
                    "workers, or a dask.distributed.Client; got "
                    f"{type(executor).__name__}.")
