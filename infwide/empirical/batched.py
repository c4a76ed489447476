"""Empirical kernels computed in tiles: what ``infwide.batch`` returns for an empirical kernel
function (NT's ``nt.batch`` batches ``empirical_ntk_fn`` / ``empirical_kernel_fn`` too).

``batch(kernel_fn, ...)`` hands an empirical kernel function to its ``batched(...)`` method,
which returns a :class:`BatchedEmpirical` keeping the empirical signature:

    batch(empirical_ntk_fn(f), batch_size=8)(x1, x2, params, **apply_fn_kwargs)
    batch(empirical_kernel_fn(f))(x1, x2, get, params, **apply_fn_kwargs)

Underneath, the tiles are run by the same machinery as analytic kernels (``BatchedKernelFn``)
on :class:`TileFn`, a view of the empirical function with the ``stax`` contract
``(x1, x2, get, params=..., **kwargs)``. Example pairs are independent in a ``stax`` network
(no layer mixes examples, except Dropout's random masks), so a tile of the kernel is the
kernel of the tile's inputs. Kernels with pair axes beyond the batch axes (``trace_axes`` not
covering every output axis) are computed tile by tile without the ``x2=None`` symmetry.
"""
import collections

import numpy as np

from ..batching import BatchedKernelFn

__all__ = ["BatchedEmpirical", "TileFn"]

_TileKernel = collections.namedtuple("_TileKernel", ("nngp", "ntk", "cov1", "cov2", "shape1",
                                                      "shape2"))


class _TileRecord(_TileKernel):
    """The record ``BatchedKernelFn`` reads from a tile: the pair fields, no covariances."""

    def replace(self, **fields):
        keep = {k: v for k, v in fields.items() if k in self._fields}
        return self._replace(**keep)


class TileFn:
    """An empirical kernel function seen with the ``stax`` contract ``(x1, x2, get, **kw)``.

    ``get=None`` (the probe) gives a record with ``nngp`` (and ``ntk`` when the function
    computes it); a tuple of names gives a namedtuple of those arrays."""

    def __init__(self, empirical):
        self.empirical = empirical

    def __repr__(self):
        return f"TileFn({self.empirical!r})"

    def __call__(self, x1, x2=None, get=None, params=None, **kwargs):
        emp = self.empirical
        names = emp.names if get is None else tuple(get)
        out = emp.compute(x1, x2, params, tuple(set(names) | {"nngp"}) if get is None
                          else names, kwargs)
        if any(isinstance(v, list) for v in out.values()):
            raise ValueError(f"batch({emp.where}): networks with a list of outputs (ending in "
                             "`parallel`) cannot be batched; call the kernel function without "
                             "batch, or batch each output's network separately.")
        if get is None:
            n1 = len(out["nngp"])
            n2 = n1 if x2 is None else out["nngp"].shape[1]
            return _TileRecord(out["nngp"], out.get("ntk"), None, None, (n1, 1), (n2, 1))
        return emp.named(names, [out[g] for g in names])


class BatchedEmpirical:
    """``infwide.batch`` of an empirical kernel function: same signature, same results."""

    def __init__(self, empirical, batch_args):
        self.empirical = empirical
        self.tiled = BatchedKernelFn(TileFn(empirical), **batch_args)

    def __repr__(self):
        return f"batch({self.empirical!r}, batch_size={self.tiled.batch_size})"

    def __call__(self, x1, x2=None, *args, **kwargs):
        """The empirical function's own signature: ``(x1, x2, params)`` for ``nngp_fn`` /
        ``ntk_fn``, ``(x1, x2, get, params)`` for ``kernel_fn`` (``params`` also by keyword)."""
        get, params, kwargs = self.empirical.parse_call(args, kwargs)
        names, as_tuple = self.empirical.parse_get(get)
        x2_arg = x2
        if x2 is None and not self._pairs_are_scalars(x1, params, kwargs):
            x2_arg = x1   # no mirror of pair axes beyond the batch axes: compute every tile
        out = self.tiled(x1, x2_arg, names, params=params, **kwargs)
        return self.empirical.finish(names, as_tuple, list(out))

    def _pairs_are_scalars(self, x1, params, kwargs):
        """Whether a kernel entry is a scalar per pair (then ``x2=None`` tiles are mirrored)."""
        x = x1[:1] if hasattr(x1, "shape") else np.asarray(x1)[:1]
        out = self.empirical.compute(x, None, params, ("nngp",), kwargs)["nngp"]
        return isinstance(out, list) or np.ndim(out) == 2
