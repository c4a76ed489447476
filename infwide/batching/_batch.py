"""``batch(kernel_fn, ...)``: the same kernel function, computed in tiles.

The batched function probes ``kernel_fn`` on one input to learn the output layout (dtype,
spatial form, whether the NTK is computed), cuts the kernel into tiles (``_plan``) sized by
``batch_size`` or a memory budget (``_memory``), runs them on an executor (``_executors``),
optionally through a resumable store (``_store``), and assembles the pieces into arrays of
the unbatched shapes: in memory, or as memory maps inside the store.
"""
import dataclasses
import functools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import device
from ..backend import as_array, get_xp, is_gpu_array
from ..kernel import Kernel, normalize_get
from ..stax.layer import Layer
from . import _memory
from ._executors import resolve_executor
from ._plan import fields_of, is_full_spatial, make_plan, place_tile
from ._progress import make_progress
from ._store import TileStore, make_fingerprint

__all__ = ["batch", "BatchedKernelFn"]


def batch(kernel_fn, batch_size=0, store=None, executor=None, memory_budget=None,
          progress=None, *, device_count=-1, store_on_device=True):
    """A kernel function with the signature and results of ``kernel_fn``, computed in tiles.

    Parameters
    ----------
    kernel_fn : callable ``(x1, x2=None, get=None, **kwargs)``
        A ``stax`` kernel function (or any function with that contract), or an empirical
        kernel function (``empirical_ntk_fn(f)``, ...): an object with a ``batched(**args)``
        method is batched by it, keeping its own signature.
    batch_size : int
        Points per tile along each batch axis; any size (no divisibility constraints).
        ``0`` picks the largest tile that fits ``memory_budget``.
    store : path or None
        A folder that makes the computation resumable: finished tiles are kept there (with
        checksums) and the result is assembled there and returned as read-only memory maps.
        A store made for other inputs, network, ``get`` or dtype is refused.
    executor : None, int or dask.distributed.Client
        ``None``: all local CPU cores (threads), or all local GPUs for CuPy inputs; an int: that
        many local workers; a ``Client``: tiles as dask tasks (``pip install
        "infwide[distributed]"``).
    memory_budget : int, str or None
        Working memory for the tiles running at once on this machine (or each GPU; with dask,
        for one tile), e.g. ``'2GB'``. Default: half of the free memory of the device in use
        (with dask: half of a worker thread's memory limit).
    progress : None, bool or text stream
        Report tiles done, rate and time left (a bar on a terminal, log lines elsewhere).
    device_count, store_on_device : Neural Tangents' spellings, accepted for compatibility.
        ``device_count``: -1 all local devices, 0 or 1 a single worker, ``n`` that many
        local workers (used when ``executor`` is None). ``store_on_device=False`` returns
        the kernel of GPU inputs in host memory (NumPy) instead of on the GPU.
    """
    own = getattr(kernel_fn, "batched", None)   # e.g. empirical kernel functions
    if callable(own) and not isinstance(kernel_fn, Layer):
        return own(batch_size=batch_size, store=store, executor=executor,
                   memory_budget=memory_budget, progress=progress, device_count=device_count,
                   store_on_device=store_on_device)
    return BatchedKernelFn(kernel_fn, batch_size, store, executor, memory_budget, progress,
                           device_count=device_count, store_on_device=store_on_device)


class BatchedKernelFn:
    """The callable returned by ``batch``; see its docstring."""

    def __init__(self, kernel_fn, batch_size=0, store=None, executor=None, memory_budget=None,
                 progress=None, *, device_count=-1, store_on_device=True):
        if isinstance(kernel_fn, Layer):
            kernel_fn = kernel_fn.kernel_fn
        if not callable(kernel_fn):
            raise TypeError(f"batch: `kernel_fn` must be a kernel function, got "
                            f"{type(kernel_fn).__name__}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 0:
            raise ValueError(f"batch: `batch_size` must be a non-negative integer (0 = from the "
                             f"memory budget), got {batch_size!r}.")
        self.wrapped_kernel_fn = kernel_fn
        self.batch_size = int(batch_size)
        self.store = None if store is None else str(store)
        self.executor = executor
        self.memory_budget = _memory.parse_budget(memory_budget)
        self.progress = progress
        if isinstance(device_count, bool) or not isinstance(device_count, (int, np.integer)) \
                or device_count < -1:
            raise ValueError(f"batch: `device_count` must be -1 (all devices) or a count >= 0, "
                             f"got {device_count!r}.")
        self.device_count, self.store_on_device = int(device_count), bool(store_on_device)

    def __repr__(self):
        return (f"batch({self.wrapped_kernel_fn!r}, batch_size={self.batch_size}, "
                f"store={self.store!r})")

    def __call__(self, x1, x2=None, get=None, **kwargs):
        job = self._prepare(x1, x2, get, kwargs)
        tiles, store = job.tiles, None
        if self.store is not None:
            fp = make_fingerprint(self.wrapped_kernel_fn, job.x1, job.x2, job.names, kwargs,
                                  job.probe.dtype)
            store = TileStore(self.store, fp, job.layout)
            if store.layout != job.layout:  # resume with the tiles the store was started with
                tiles, _, _ = make_plan(len(job.x1), job.n2, 1, 1, job.x2 is None, job.fields,
                                        store.layout["row_edges"], store.layout["col_edges"])
        try:
            outputs = self._compute(tiles, store, job, kwargs)
        except BaseException:
            if store is not None:
                store.close(finished=False)
            raise
        if store is not None:
            store.close(finished=True)
        return job.probe.build(outputs, job.names, job.as_tuple, job.x1, job.x2)

    def tiles(self, x1, x2=None, get=None, **kwargs):
        """The tiles a fresh computation of ``self(x1, x2, get, **kwargs)`` would run (a
        store that already exists resumes with the tiles it was started with)."""
        return list(self._prepare(x1, x2, get, kwargs).tiles)

    def _prepare(self, x1, x2, get, kwargs):
        names, as_tuple = normalize_get(get, "batch")
        x1, x2 = _check_inputs(x1, x2)
        probe = _Probe(self.wrapped_kernel_fn, x1, x2, names, as_tuple, kwargs)
        symmetric = x2 is None
        n2 = len(x1) if symmetric else len(x2)
        fields = [f for f in fields_of(names) if probe.has(f) and not (symmetric and f == "cov2")]
        spec = self.executor
        if spec is None and self.device_count != -1:
            spec = max(1, self.device_count)
        executor = resolve_executor(spec, x1)
        b1, b2 = self._tile_sizes(x1, x2, probe, executor, kwargs)
        tiles, rows, cols = make_plan(len(x1), n2, b1, b2, symmetric, fields)
        layout = {"row_edges": rows, "col_edges": cols, "symmetric": symmetric}
        return _Job(x1=x1, x2=x2, n2=n2, names=names, as_tuple=as_tuple, probe=probe,
                    fields=fields, shapes=probe.shapes(fields, len(x1), n2), executor=executor,
                    tiles=tiles, layout=layout)

    # -- steps ---------------------------------------------------------------------------
    def _tile_sizes(self, x1, x2, probe, executor, kwargs):
        n1, n2 = len(x1), len(x1) if x2 is None else len(x2)
        if self.batch_size > 0:
            return min(self.batch_size, n1), min(self.batch_size, n2)
        model = _memory.pair_model(tuple(x1.shape), probe.out_shape,
                                   _needs_full(self.wrapped_kernel_fn, x1, probe),
                                   probe.dtype.itemsize)
        budget = self._tile_budget(executor)
        if not executor.gpu_devices:
            measured = _memory.measured_pair_bytes(self.wrapped_kernel_fn, x1, x2, probe.get,
                                                   kwargs, model)
            if measured is not None:
                model = (max(model[0], measured[0]), model[1])
                budget = max(1, int(budget - measured[1]))
        return _memory.choose_tile(n1, n2, model, budget)

    def _tile_budget(self, executor):
        per_worker = getattr(executor, "memory_per_worker", None)
        if per_worker is not None:  # dask: one tile per worker thread
            return self.memory_budget or int(per_worker * _memory.SAFE_SHARE)
        budget = self.memory_budget or int(
            device.available_memory(executor.gpu_devices) * _memory.SAFE_SHARE)
        if executor.gpu_devices:
            return budget
        return budget // (executor.n_workers + 1)

    def _compute(self, tiles, store, job, kwargs):
        probe, shapes = job.probe, job.shapes
        if store is not None:
            done = store.open_complete_result()
            if done is not None and set(done) == set(shapes):
                return done
            outputs = store.create_result(shapes, probe.dtype)
            convert = _to_host
        else:
            outputs = probe.allocate(shapes, on_host=not self.store_on_device)
            convert = _converter(outputs)
        place = functools.partial(place_tile, outputs, n_spatial=probe.n_spatial,
                                  full=probe.full, convert=convert)
        todo = []
        for t in tiles:
            arrays = None if store is None else store.load(t)
            if arrays is None:
                todo.append(t)
            else:
                place(t, arrays)
                store.reused += 1
        progress = make_progress(self.progress, len(tiles), len(tiles) - len(todo))
        try:
            _drive(job.executor, todo, {"x1": job.x1, "x2": job.x2}, self.wrapped_kernel_fn,
                   job.names is None, kwargs, store, place, progress)
        finally:
            if progress is not None:
                progress.close()
        if store is not None:
            return store.finish_result(outputs)
        return outputs


def _drive(executor, todo, inputs, kernel_fn, get_is_none, kwargs, store, place, progress):
    """Keep at most ``executor.window`` tiles in flight; place each one as it finishes."""
    if not todo:
        return
    store_dir = None if store is None else store.dir
    executor.start(kernel_fn, inputs)
    queue, pending, ok = iter(todo), {}, False
    try:
        for t in queue:
            pending[executor.submit(t, get_is_none, kwargs, store_dir)] = t
            if len(pending) >= executor.window:
                break
        while pending:
            for fut in executor.wait_first(set(pending)):
                tile = pending.pop(fut)
                _finish_tile(executor.result(fut), tile, store, place)
                if progress is not None:
                    progress.update(1)
                nxt = next(queue, None)
                if nxt is not None:
                    pending[executor.submit(nxt, get_is_none, kwargs, store_dir)] = nxt
        ok = True
    finally:
        executor.stop(cancel=not ok, pending=list(pending))


def _finish_tile(result, tile, store, place):
    arrays, meta = result
    if meta is not None:
        store.record(meta)
        store.computed += 1
    if arrays is None:  # written by a remote worker: read it back from the shared store
        arrays = store.load(tile)
        if arrays is None:
            raise OSError(f"batch: a worker wrote {tile.describe()} to {store.tile_path(tile.key)}"
                          " but this process cannot read it back; the store folder must be "
                          "shared between the workers and this process.")
    place(tile, arrays)


@dataclasses.dataclass
class _Job:
    """Everything one call decides before computing."""
    x1: Any
    x2: Any
    n2: int
    names: Optional[Tuple[str, ...]]
    as_tuple: bool
    probe: Any
    fields: List[str]
    shapes: Dict[str, Tuple[int, ...]]
    executor: Any
    tiles: List[Any]
    layout: Dict[str, Any]


# -- probing the kernel function ---------------------------------------------------------------
class _Probe:
    """What the kernel function returns for one point (one pair when ``x2`` is given):
    layout, dtype (which may depend on both inputs), output types."""

    def __init__(self, kernel_fn, x1, x2, names, as_tuple, kwargs):
        k = kernel_fn(x1[:1], None if x2 is None else x2[:1], None, **kwargs)
        if not all(hasattr(k, a) for a in ("nngp", "cov1", "shape1")):
            raise TypeError("batch: `kernel_fn(x, None, get=None)` must return a Kernel (with "
                            f"nngp, ntk, cov1, cov2, shape1); got {type(k).__name__}.")
        self.kernel = k
        self.get = None if names is None else tuple(names)
        self.dtype = np.dtype(k.nngp.dtype)
        self.out_shape = tuple(k.shape1)
        self.n_spatial = len(self.out_shape) - 2
        self.full = is_full_spatial(k.nngp.ndim, self.n_spatial)
        self.pair_tail = tuple(k.nngp.shape[2:])
        self.cov_tail = None if k.cov1 is None else tuple(k.cov1.shape[1:])
        self.xp = get_xp(k.nngp)
        self.tuple_type = None
        if as_tuple:
            self.tuple_type = type(kernel_fn(x1[:1], None, names, **kwargs))

    def has(self, field):
        return getattr(self.kernel, "cov1" if field == "cov2" else field, None) is not None

    def shapes(self, fields, n1, n2):
        out = {}
        for f in fields:
            if f in ("nngp", "ntk"):
                out[f] = (n1, n2) + self.pair_tail
            else:
                out[f] = ((n1 if f == "cov1" else n2),) + self.cov_tail
        return out

    def allocate(self, shapes, on_host=False):
        xp = np if on_host else self.xp
        return {f: xp.empty(s, self.dtype) for f, s in shapes.items()}

    def build(self, outputs, names, as_tuple, x1, x2):
        if names is None:
            n2 = len(x1) if x2 is None else len(x2)
            return self.kernel.replace(
                nngp=outputs["nngp"], ntk=outputs.get("ntk"), cov1=outputs["cov1"],
                cov2=outputs.get("cov2"), x1_is_x2=x2 is None,
                shape1=(len(x1),) + self.out_shape[1:], shape2=(n2,) + self.out_shape[1:])
        vals = [outputs.get(n) for n in names]
        if not as_tuple:
            return vals[0]
        return self.tuple_type(*vals)


def _needs_full(kernel_fn, x1, probe):
    """Whether the network keeps the full spatial covariance of its input (conservative: yes
    when the kernel function is not a ``stax`` layer)."""
    if len(x1.shape) <= 2:
        return False
    layer = getattr(kernel_fn, "__self__", None)
    if not isinstance(layer, Layer):
        return True
    try:
        return bool(layer.input_needs_full(probe.full)) or probe.full
    except Exception:  # a layer that cannot answer: assume the expensive form
        return True


# -- arguments and conversions -----------------------------------------------------------------
def _check_inputs(x1, x2):
    for name, x in (("x1", x1), ("x2", x2)):
        if isinstance(x, Kernel):
            raise TypeError(f"batch: `{name}` must be an array of inputs; a batched kernel "
                            "function cannot start from a Kernel.")
    x1 = as_array(x1, "x1")
    x2 = None if x2 is None else as_array(x2, "x2")
    for name, x in (("x1", x1), ("x2", x2)):
        if x is not None and (x.ndim < 2 or x.shape[0] < 1):
            raise ValueError(f"batch: `{name}` must have a batch axis with at least one point and "
                             f"a channel axis; got shape {tuple(x.shape)}.")
    if x2 is not None and tuple(x2.shape[1:]) != tuple(x1.shape[1:]):
        raise ValueError("batch: `x1` and `x2` must have the same shape apart from the batch "
                         f"axis; got {tuple(x1.shape)} and {tuple(x2.shape)}.")
    return x1, x2


def _to_host(a):
    return a.get() if is_gpu_array(a) else a


def _to_device(device_id, a):
    import cupy
    if isinstance(a, np.ndarray) or a.device.id != device_id:
        a = _to_host(a)
    with cupy.cuda.Device(device_id):
        return cupy.asarray(a)


def _converter(outputs):
    first = next(iter(outputs.values()), None)
    if first is None or not is_gpu_array(first):
        return _to_host
    return functools.partial(_to_device, first.device.id)
