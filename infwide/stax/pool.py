"""Pooling layers: ``AvgPool``, ``SumPool``, ``GlobalAvgPool``, ``GlobalSumPool`` (NT's API).

Pooling is a fixed linear map of each channel, so the kernel is the pooled covariance on both
positions of every pair (``kernels.pool``; Novak et al. 2019, section 3). It mixes positions:
these layers need the full spatial covariance of their input (``input_needs_full`` is
``True``), unlike ``Flatten`` which only needs its diagonal.
"""
import numpy as np

from ..backend import get_xp
from ..kernels import ops
from ..kernels.conv import out_size_and_pads
from ..kernels.pool import (avg_pool_full, global_avg_full, global_sum_full, sum_pool_full,
                            window_counts)
from ._convops import pad_input, pad_input_adjoint
from ._spatial import int_tuple, parse_padding
from .layer import Layer, linear_jvp

__all__ = ["AvgPool", "SumPool", "GlobalAvgPool", "GlobalSumPool"]


def _to_canonical(xp, x, batch_axis, channel_axis):
    return xp.moveaxis(x, (batch_axis % x.ndim, channel_axis % x.ndim), (0, x.ndim - 1))


def _from_canonical(xp, x, batch_axis, channel_axis):
    return xp.moveaxis(x, (0, x.ndim - 1), (batch_axis % x.ndim, channel_axis % x.ndim))


def _needs_full(layer, k):
    if k.n_spatial and k.diagonal_spatial:
        raise ValueError(f"{layer.name}: needs the full spatial covariance of its input, got only "
                         f"its diagonal (nngp of shape {tuple(k.nngp.shape)}); compute the kernel "
                         "from the inputs, or from a Kernel built with the full covariance.")


class _Pool(Layer):
    """Windowed average or sum pooling of the spatial axes."""

    def __init__(self, kind, window_shape, strides, padding, normalize_edges, batch_axis,
                 channel_axis):
        n = len(tuple(window_shape))
        self.name = f"{kind}({tuple(window_shape)})"
        if n < 1:
            raise ValueError(f"{self.name}: `window_shape` needs at least one spatial dimension.")
        self.kind = kind
        self.window = int_tuple(window_shape, n, "window_shape", self.name)
        self.strides = int_tuple((1,) * n if strides is None else strides, n, "strides", self.name)
        self.padding = parse_padding(padding, self.name)
        self.normalize_edges = bool(normalize_edges)
        self.batch_axis, self.channel_axis = int(batch_axis), int(channel_axis)

    def input_axes(self):
        return self.batch_axis, self.channel_axis

    def _out_sizes(self, sizes, shape):
        out = []
        for size, w, t in zip(sizes, self.window, self.strides):
            o = out_size_and_pads(size, w, t, self.padding)[0]
            if o < 1:
                raise ValueError(f"{self.name}: input of shape {tuple(shape)} is too small for the "
                                 f"window {self.window} with padding '{self.padding}' (spatial "
                                 f"sizes {tuple(sizes)}).")
            out.append(o)
        return tuple(out)

    def _canonical_sizes(self, shape):
        n = len(self.window)
        if len(shape) != n + 2:
            raise ValueError(f"{self.name}: expected inputs with {n} spatial dimensions plus batch "
                             f"and channel axes, got shape {tuple(shape)}.")
        return tuple(shape[i] for i in range(len(shape))
                     if i not in (self.batch_axis % len(shape), self.channel_axis % len(shape)))

    def output_shape(self, input_shape):
        sizes = self._canonical_sizes(input_shape)
        out = iter(self._out_sizes(sizes, input_shape))
        nd = len(input_shape)
        return tuple(s if i in (self.batch_axis % nd, self.channel_axis % nd) else next(out)
                     for i, s in enumerate(input_shape))

    # -- finite network --------------------------------------------------------------------
    def _pads(self, sizes):
        return [out_size_and_pads(s, w, t, self.padding)[1:]
                for s, w, t in zip(sizes, self.window, self.strides)]

    def _divisor(self, xp, sizes, dtype):
        """Per-output-position divisor (1 for sums), shaped to broadcast on (N, O.., C)."""
        if self.kind == "SumPool":
            return None
        counts = [window_counts(s, w, t, self.padding, self.normalize_edges)
                  for s, w, t in zip(sizes, self.window, self.strides)]
        div = counts[0]
        for c in counts[1:]:
            div = np.multiply.outer(div, c)
        return xp.asarray(div.reshape((1,) + div.shape + (1,)), dtype=dtype)

    def forward(self, params, x, rng=None):
        xp = get_xp(x)
        self._out_sizes(self._canonical_sizes(x.shape), x.shape)
        xc = _to_canonical(xp, x, self.batch_axis, self.channel_axis)
        sizes = xc.shape[1:-1]
        xpad = pad_input(xp, xc, self._pads(sizes), self.padding)
        out_sizes = self._out_sizes(sizes, x.shape)
        y = None
        for a in np.ndindex(*self.window):
            piece = xpad[_slices(a, self.strides, out_sizes)]
            y = piece.copy() if y is None else y + piece
        div = self._divisor(xp, sizes, x.dtype)
        y = y if div is None else y / div
        return _from_canonical(xp, y, self.batch_axis, self.channel_axis), (xpad.shape, sizes)

    def apply(self, params, x, rng=None):
        return self.forward(params, x)[0]

    def backward(self, params, cache, ct):
        xp = get_xp(ct)
        pad_shape, sizes = cache
        ctc = _to_canonical(xp, ct, self.batch_axis, self.channel_axis)
        div = self._divisor(xp, sizes, ct.dtype)
        ctc = ctc if div is None else ctc / div
        g = xp.zeros(pad_shape, dtype=ct.dtype)
        for a in np.ndindex(*self.window):
            g[_slices(a, self.strides, ctc.shape[1:-1])] += ctc
        dx = pad_input_adjoint(xp, g, sizes, self._pads(sizes), self.padding)
        return (), _from_canonical(xp, dx, self.batch_axis, self.channel_axis)

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: pooling is linear, ``dy = pool(dx)``."""
        return linear_jvp(self, params, x, d_params, dx)

    # -- infinite width --------------------------------------------------------------------
    def input_needs_full(self, out_full):
        return True

    def fused_op(self):
        if self.kind == "SumPool":
            return None
        return ops.AvgPool(tuple(self.window), tuple(self.strides), self.padding,
                           self.normalize_edges)

    def kernel(self, k, out_full=False):
        _needs_full(self, k)
        self._out_sizes(k.shape1[1:-1], k.shape1)
        xp = get_xp(k.nngp)
        if self.kind == "SumPool":
            pool = lambda m, nb: sum_pool_full(xp, m, self.window, self.strides, self.padding, nb)
        else:
            pool = lambda m, nb: avg_pool_full(xp, m, self.window, self.strides, self.padding,
                                               self.normalize_edges, nb)
        out = k.map_covariances(pool)
        sizes = out.nngp.shape[2::2]
        return out.replace(shape1=(k.shape1[0],) + sizes + k.shape1[-1:],
                           shape2=(k.shape2[0],) + sizes + k.shape2[-1:])


def _slices(a, strides, out_sizes):
    return (slice(None),) + tuple(slice(ai, ai + (o - 1) * t + 1, t)
                                  for ai, t, o in zip(a, strides, out_sizes)) + (slice(None),)


def AvgPool(window_shape, strides=None, padding="VALID", normalize_edges=False, batch_axis=0,
            channel_axis=-1):
    """Average pooling as in Neural Tangents (``strides=None`` means stride 1; the average
    divides by the window size, or by the in-image count at 'SAME' edges with
    ``normalize_edges=True``)."""
    return _Pool("AvgPool", window_shape, strides, padding, normalize_edges, batch_axis,
                 channel_axis)


def SumPool(window_shape, strides=None, padding="VALID", batch_axis=0, channel_axis=-1):
    """Sum pooling as in Neural Tangents."""
    return _Pool("SumPool", window_shape, strides, padding, False, batch_axis, channel_axis)


class _GlobalPool(Layer):
    """Average or sum over all spatial positions, removing the spatial axes."""

    def __init__(self, kind, batch_axis, channel_axis):
        self.kind, self.name = kind, kind
        self.batch_axis, self.channel_axis = int(batch_axis), int(channel_axis)

    def input_axes(self):
        return self.batch_axis, self.channel_axis

    def _spatial(self, ndim):
        keep = (self.batch_axis % ndim, self.channel_axis % ndim)
        return tuple(i for i in range(ndim) if i not in keep)

    def output_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"{self.name}: expected inputs with spatial axes besides the batch "
                             f"and channel axes, got shape {tuple(input_shape)}.")
        sp = self._spatial(len(input_shape))
        return tuple(s for i, s in enumerate(input_shape) if i not in sp)

    def forward(self, params, x, rng=None):
        self.output_shape(x.shape)
        sp = self._spatial(x.ndim)
        y = x.mean(axis=sp) if self.kind == "GlobalAvgPool" else x.sum(axis=sp)
        return y, x.shape

    def apply(self, params, x, rng=None):
        return self.forward(params, x)[0]

    def backward(self, params, cache, ct):
        xp = get_xp(ct)
        sp = self._spatial(len(cache))
        g = xp.expand_dims(ct, sp)
        if self.kind == "GlobalAvgPool":
            g = g / ct.dtype.type(np.prod([cache[i] for i in sp]))
        return (), xp.broadcast_to(g, cache).copy()

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: global pooling is linear, ``dy = pool(dx)``."""
        return linear_jvp(self, params, x, d_params, dx)

    def input_needs_full(self, out_full):
        return True

    def fused_op(self):
        return ops.GlobalAvgPool() if self.kind == "GlobalAvgPool" else None

    def kernel(self, k, out_full=False):
        self.output_shape(k.shape1)
        _needs_full(self, k)
        xp = get_xp(k.nngp)
        red = global_avg_full if self.kind == "GlobalAvgPool" else global_sum_full
        return k.map_covariances(lambda m, nb: red(xp, m, nb),
                                 shape1=(k.shape1[0], k.shape1[-1]),
                                 shape2=(k.shape2[0], k.shape2[-1]), diagonal_spatial=True)


def GlobalAvgPool(batch_axis=0, channel_axis=-1):
    """Global average pooling over all spatial axes (NT's ``GlobalAvgPool``)."""
    return _GlobalPool("GlobalAvgPool", batch_axis, channel_axis)


def GlobalSumPool(batch_axis=0, channel_axis=-1):
    """Global sum pooling over all spatial axes (NT's ``GlobalSumPool``)."""
    return _GlobalPool("GlobalSumPool", batch_axis, channel_axis)
