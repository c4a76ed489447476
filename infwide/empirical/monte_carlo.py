"""Monte-Carlo estimates of the NNGP and NTK: empirical kernels averaged over independently
initialised finite networks (Neural Tangents' ``monte_carlo_kernel_fn``).

As the number of samples and the width grow, the estimates converge to the analytic kernels of
``kernel_fn`` (Neal 1996; Lee et al. 2018; Jacot et al. 2018).
"""
import numpy as np

from ..backend import get_xp
from ..device import restore, result_kind
from ..keywords import APPLY_KEYWORDS, reject_unknown
from ..stax.layer import as_generator, as_layer, input_shape, prepare_inputs
from ._contract import canonical_axes
from .kernels import NtkImplementation, _KernelFn, _check_implementation, _named, _normalize_get

__all__ = ["monte_carlo_kernel_fn"]


def _canonical_n_samples(n_samples):
    """(sorted sample counts, whether to return a generator)."""
    if isinstance(n_samples, (int, np.integer)) and not isinstance(n_samples, bool):
        counts, generator = [int(n_samples)], False
    elif hasattr(n_samples, "__iter__"):
        counts, generator = list(n_samples), True
        if not counts or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                                 for n in counts):
            raise ValueError(f"monte_carlo_kernel_fn: `n_samples` must be a positive integer or "
                             f"a non-empty collection of them; got {n_samples!r}.")
    else:
        raise TypeError(f"monte_carlo_kernel_fn: `n_samples` must be an integer or a collection "
                        f"of integers; got {type(n_samples).__name__}.")
    if any(n <= 0 for n in counts):
        raise ValueError(f"monte_carlo_kernel_fn: `n_samples` must be positive; got {n_samples!r}.")
    return sorted(set(int(n) for n in counts)), generator


def _tiles(n, size):
    size = n if size in (0, None) or size >= n else int(size)
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class _MonteCarlo:
    """``kernel_fn(x1, x2=None, get=None, **apply_fn_kwargs)``: see ``monte_carlo_kernel_fn``."""

    def __init__(self, init_fn, apply_fn, key, n_samples, batch_size, trace_axes, diagonal_axes):
        where = "monte_carlo_kernel_fn"
        self.layer = as_layer(apply_fn, where)
        init_owner = getattr(init_fn, "__self__", None)
        if init_owner is not None and init_owner is not self.layer:
            raise ValueError(f"{where}: `init_fn` and `apply_fn` come from different networks "
                             f"({init_owner!r} and {self.layer!r}).")
        if not callable(init_fn):
            raise TypeError(f"{where}: `init_fn` must be callable, got {type(init_fn).__name__}.")
        if int(batch_size) != batch_size or batch_size < 0:
            raise ValueError(f"{where}: `batch_size` must be a non-negative integer (0 = no "
                             f"batching); got {batch_size!r}.")
        self.init_fn, self.key = init_fn, key
        self.counts, self.generator = _canonical_n_samples(n_samples)
        self.batch_size = int(batch_size)
        self.empirical = _KernelFn(self.layer, trace_axes, diagonal_axes, where)
        self.where = where

    def __call__(self, x1, x2=None, get=None, **apply_fn_kwargs):
        reject_unknown(self.where, apply_fn_kwargs, APPLY_KEYWORDS)
        names, as_tuple = _normalize_get(get, self.where)
        kind = result_kind(x1, x2)  # the device policy: results as the input's kind of array
        x1 = prepare_inputs(x1, "x1")
        x2 = None if x2 is None else prepare_inputs(x2, "x2")
        stream = self._running(x1, x2, names, apply_fn_kwargs)
        if self.generator:
            return (restore(self._format(names, as_tuple, est), kind) for est in stream)
        for est in stream:
            pass
        return restore(self._format(names, as_tuple, est), kind)

    def _format(self, names, as_tuple, est):
        values = [est[g] for g in names]
        return _named(names, values) if as_tuple else values[0]

    def _running(self, x1, x2, names, kwargs):
        """Yield the running averages after each count in ``self.counts``."""
        rng = as_generator(self.key)
        shape = [tuple(np.shape(a)) for a in x1] if isinstance(x1, list) else tuple(np.shape(x1))
        total, done = None, 0
        for target in self.counts:
            while done < target:
                seed = rng.integers(0, 2**63 - 1)
                _, params = self.init_fn(np.random.default_rng(seed), shape)
                sample = self._one(x1, x2, names, params, kwargs, rng)
                total = sample if total is None else {g: total[g] + sample[g] for g in names}
                done += 1
            yield {g: total[g] / total[g].dtype.type(done) for g in names}

    def _one(self, x1, x2, names, params, kwargs, rng):
        """One empirical sample, computed in tiles of ``batch_size`` examples of x1 and x2."""
        if "rng" not in kwargs:
            kwargs = dict(kwargs, rng=np.random.default_rng(rng.integers(0, 2**63 - 1)))
        return _tiled(self.empirical, x1, x2, names, params, kwargs, self.batch_size)


def _take(x, s):
    return [xi[s] for xi in x] if isinstance(x, list) else x[s]


def _n(x):
    return len(x[0]) if isinstance(x, list) else len(x)


def _concat(parts, axis):
    """Concatenate kernels (or lists of kernels, one per network output) along ``axis``."""
    if isinstance(parts[0], list):
        return [_concat([p[k] for p in parts], axis) for k in range(len(parts[0]))]
    return get_xp(parts[0]).concatenate(parts, axis=axis)


def _tiled(empirical, x1, x2, names, params, kwargs, batch_size):
    """The empirical kernel assembled from tiles of rows of x1 and x2 (any sizes). Tiles are
    only used when the batch axis is neither traced nor diagonal, so that the kernel's first
    two axes index x1 and x2."""
    x2_ = x1 if x2 is None else x2
    tiles1, tiles2 = _tiles(_n(x1), batch_size), _tiles(_n(x2_), batch_size)
    out_shape = empirical.layer.output_shape(input_shape(x1))
    ndim = len(out_shape[0] if isinstance(out_shape, list) else out_shape)
    batch_paired = 0 in canonical_axes(empirical.trace_axes, ndim, "trace_axes", empirical.where) \
        or 0 in canonical_axes(empirical.diagonal_axes, ndim, "diagonal_axes", empirical.where)
    if (len(tiles1) == 1 and len(tiles2) == 1) or batch_paired:
        return empirical.compute(x1, x2, params, names, kwargs)
    rows = []
    for s1 in tiles1:
        # a diagonal tile of x1 with itself is one forward pass (x2=None), as without tiles:
        # stochastic layers (Dropout) then use one mask for both factors of each pair
        cols = [empirical.compute(_take(x1, s1), None if x2 is None and s1 == s2 else
                                  _take(x2_, s2), params, names, kwargs) for s2 in tiles2]
        rows.append({g: _concat([c[g] for c in cols], 1) for g in names})
    return {g: _concat([r[g] for r in rows], 0) for g in names}


def monte_carlo_kernel_fn(init_fn, apply_fn, key, n_samples, batch_size=0, device_count=-1,
                          store_on_device=True, trace_axes=(-1,), diagonal_axes=(),
                          vmap_axes=None, implementation=NtkImplementation.JACOBIAN_CONTRACTION):
    """Monte-Carlo sampler of the NNGP and NTK of a ``stax`` network (Neural Tangents' API).

    Parameters
    ----------
    init_fn, apply_fn : the network's functions (from a Layer built with ``infwide.stax``).
    key : the randomness: an int seed, a ``numpy.random.Generator`` (or a JAX-style uint32
        key array).
    n_samples : int, or a collection of ints: the number(s) of networks averaged.
    batch_size : compute each sample in tiles of this many rows of ``x1`` and ``x2`` (any
        sizes; ``0`` = whole batches).
    trace_axes, diagonal_axes : as in ``empirical_kernel_fn``.
    device_count, store_on_device, vmap_axes, implementation : accepted for compatibility with
        Neural Tangents and do not change the result (the inputs decide the device;
        ``implementation`` is checked to be an :class:`NtkImplementation` or its value).

    Returns
    -------
    ``kernel_fn(x1, x2=None, get=None, **apply_fn_kwargs)``: with an integer ``n_samples`` it
    returns the estimate (``get=None``: ``EmpiricalKernel(nngp, ntk)``); with a collection it
    returns a generator of the running estimates after each count, in increasing order. Each
    sample draws fresh parameters with ``init_fn`` and passes a fresh ``rng`` (a NumPy
    Generator) to ``apply_fn`` for stochastic layers such as ``Dropout``.
    """
    _check_implementation(implementation, "monte_carlo_kernel_fn")
    return _MonteCarlo(init_fn, apply_fn, key, n_samples, batch_size, trace_axes, diagonal_axes)
