"""The ``Kernel`` record: the covariance tensors a network layer passes on.

Layout (NT's): batch axes first, then spatial axes. ``nngp`` and ``ntk`` have shape
``(N1, N2)`` after a readout, ``(N1, N2, H, W, ...)`` when only the spatial diagonal is
kept (``diagonal_spatial=True``) and ``(N1, N2, H, H, W, W, ...)`` when the full spatial
covariance is kept. ``cov1``/``cov2`` are the per-input covariances with the batch
diagonal taken: ``(N1,)``, ``(N1, H, W, ...)`` or ``(N1, H, H, W, W, ...)``.
"""
import dataclasses
from typing import Any, Optional, Tuple

__all__ = ["Kernel", "VALID_GETS", "normalize_get"]

VALID_GETS = ("nngp", "ntk", "cov1", "cov2")


def normalize_get(get, where="kernel_fn"):
    """``(names, as_tuple)`` for a ``get`` argument of a kernel function (``(None, False)`` for
    the whole ``Kernel``), validated; ``where`` names the caller in the error."""
    if get is None:
        return None, False
    names = (get,) if isinstance(get, str) else tuple(get)
    for g in names:
        if g not in VALID_GETS:
            raise ValueError(f"{where}: unknown `get` {g!r}; expected one of {VALID_GETS}, "
                             "a tuple of them, or None for the whole Kernel.")
    return names, not isinstance(get, str)


@dataclasses.dataclass(frozen=True)
class Kernel:
    nngp: Any
    ntk: Optional[Any]
    cov1: Any
    cov2: Optional[Any]
    shape1: Tuple[int, ...]
    shape2: Tuple[int, ...]
    x1_is_x2: bool = False
    is_gaussian: bool = True
    diagonal_spatial: bool = True

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def map_covariances(self, fn, **changes):
        """The Kernel with ``fn(m, n_batch)`` applied to each covariance field that is present:
        ``nngp`` and ``ntk`` with ``n_batch=2`` (their axes N1, N2 first), ``cov1`` and
        ``cov2`` with ``n_batch=1``; absent (``None``) fields stay ``None``. ``changes``
        replace other fields at the same time (e.g. ``shape1``, ``diagonal_spatial``)."""
        return self.replace(nngp=_apply(fn, self.nngp, 2), ntk=_apply(fn, self.ntk, 2),
                            cov1=_apply(fn, self.cov1, 1), cov2=_apply(fn, self.cov2, 1),
                            **changes)

    @property
    def n_spatial(self):
        """Number of spatial dimensions still carried."""
        return len(self.shape1) - 2

    @property
    def dtype(self):
        return self.nngp.dtype

    def cov2_or_cov1(self):
        """``cov2``, or ``cov1`` when x2 was x1 (``cov2`` is then not stored)."""
        return self.cov1 if self.cov2 is None else self.cov2

    def __repr__(self):
        shp = lambda a: None if a is None else tuple(a.shape)
        return (f"Kernel(nngp={shp(self.nngp)}, ntk={shp(self.ntk)}, cov1={shp(self.cov1)}, "
                f"cov2={shp(self.cov2)}, shape1={self.shape1}, shape2={self.shape2}, "
                f"diagonal_spatial={self.diagonal_spatial}, is_gaussian={self.is_gaussian})")


def _apply(fn, m, n_batch):
    return None if m is None else fn(m, n_batch)
