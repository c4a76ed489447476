"""Axis bookkeeping shared by the predictors: NT's kernel and output layouts, flattened to 2-D.

An output array ``f`` (``y_train``, ``fx_train_0``, ...) has *row* axes (every axis not in
``trace_axes``) and *channel* axes (the ``trace_axes``). A kernel lacks the channel axes and
stores its row axes zipped: ``(N1, N2, S1, S1', ...)`` for rows ``(N, S)``; it is read as
``Theta (x) I`` over the channels (block diagonal, the same block for every channel).

All linear algebra happens on 2-D views: kernels as ``(rows1, rows2)`` matrices
(:func:`kernel_2d`, NT's ``make_2d``) and outputs as ``(rows, channels)`` matrices
(:meth:`Layout.to_2d`); results are reshaped back with :meth:`Layout.from_2d` and
:func:`zip_2d`.
"""
import math

from ..backend import get_xp

__all__ = ["canonical_axes", "Layout", "kernel_2d", "zip_2d", "kernel_row_shapes"]


def canonical_axes(axes, ndim, name="trace_axes"):
    """Sorted non-negative axes from an int or a sequence of ints (negatives count from the end)."""
    if isinstance(axes, int):
        axes = (axes,)
    try:
        axes = [int(a) for a in axes]
    except TypeError as e:
        raise TypeError(f"`{name}` must be an int or a sequence of ints; got {axes!r}.") from e
    out = set()
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"`{name}` entry {a} is out of range for `y_train` with {ndim} "
                             f"dimension(s).")
        out.add(a % ndim)
    return tuple(sorted(out))


class Layout:
    """How arrays shaped like the outputs map to ``(rows, channels)`` matrices.

    ``y_shape`` is the shape of ``y_train``; ``trace_axes`` its channel axes (NT's meaning).
    """

    def __init__(self, y_shape, trace_axes):
        self.ndim = len(y_shape)
        self.trace = canonical_axes(trace_axes, self.ndim)
        self.rows_axes = tuple(a for a in range(self.ndim) if a not in self.trace)
        self.train_rows = tuple(y_shape[a] for a in self.rows_axes)
        self.chan_shape = tuple(y_shape[a] for a in self.trace)
        self.n_chan = math.prod(self.chan_shape)
        self.n_rows = math.prod(self.train_rows)
        self.y_shape = tuple(y_shape)

    def fx_shape(self, rows_shape):
        """The output shape for kernel rows ``rows_shape`` (channel axes put back in place)."""
        shape = list(rows_shape)
        for a, c in zip(self.trace, self.chan_shape):
            shape.insert(a, c)
        return tuple(shape)

    def to_2d(self, xp, f):
        """``f`` of an output shape -> ``(prod(rows), prod(channels))``."""
        f = xp.moveaxis(f, self.trace, tuple(range(self.ndim - len(self.trace), self.ndim)))
        return f.reshape((-1, self.n_chan))

    def from_2d(self, xp, f2, lead_shape, rows_shape):
        """``(*lead, rows, channels)`` -> ``lead_shape + fx_shape(rows_shape)``."""
        lead = len(lead_shape)
        f = f2.reshape(tuple(lead_shape) + tuple(rows_shape) + self.chan_shape)
        n_rows = len(rows_shape)
        src = tuple(range(lead + n_rows, lead + n_rows + len(self.trace)))
        dst = tuple(lead + a for a in self.trace)
        return xp.moveaxis(f, src, dst)


def kernel_row_shapes(k):
    """``(rows1, rows2)`` of a zipped kernel ``(A1, A2, B1, B2, ...)``."""
    return tuple(k.shape[0::2]), tuple(k.shape[1::2])


def kernel_2d(k):
    """NT's ``make_2d``: ``(A1, A2, B1, B2, ...)`` -> ``(A1*B1*..., A2*B2*...)``.

    A 2-D kernel is returned as it is (no copy; a ``numpy.memmap`` stays a memmap).
    """
    xp = get_xp(k)
    if k.ndim == 2:
        return k
    if k.ndim % 2:
        raise ValueError(f"a kernel must have an even number of axes (zipped pairs); got shape "
                         f"{tuple(k.shape)}.")
    half = k.ndim // 2
    k = xp.moveaxis(k, tuple(range(1, k.ndim, 2)), tuple(range(half, k.ndim)))
    return k.reshape((math.prod(k.shape[:half]), math.prod(k.shape[half:])))


def zip_2d(xp, k2, lead_shape, rows1, rows2):
    """Inverse of :func:`kernel_2d` under leading axes: ``(*lead, R1, R2)`` -> zipped layout."""
    lead = len(lead_shape)
    k = k2.reshape(tuple(lead_shape) + tuple(rows1) + tuple(rows2))
    n = len(rows1)
    if n <= 1:
        return k
    src = tuple(range(lead + n, lead + 2 * n))
    dst = tuple(range(lead + 1, lead + 2 * n, 2))
    return xp.moveaxis(k, src, dst)
