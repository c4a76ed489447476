"""``LayerNorm`` and ``Dropout`` with Neural Tangents' API and kernels (``kernels.norm``).

``LayerNorm(axis=-1, eps=1e-12, batch_axis=0, channel_axis=-1)`` normalises over ``axis``
(which must include the channel axis for an infinite-width limit to exist) and passes the
spatial form through. ``Dropout(rate, mode='train')``: as in NT (and ``jax.example_libraries``)
``rate`` is the probability to KEEP a unit; kept units are divided by ``rate``. ``apply_fn``
needs ``rng=`` (an int seed or a ``numpy.random.Generator``) in 'train' mode; 'test' mode is
the identity, for the finite network and the kernel.
"""
import numpy as np

from ..backend import get_xp
from ..kernels.norm import (dropout_pair, dropout_self, layer_norm_pair, layer_norm_self,
                            layer_norm_variances)
from .layer import Layer, as_generator

__all__ = ["LayerNorm", "Dropout"]


class _LayerNorm(Layer):
    def __init__(self, axis=-1, eps=1e-12, batch_axis=0, channel_axis=-1):
        self.axis = (int(axis),) if np.ndim(axis) == 0 else tuple(int(a) for a in axis)
        if not self.axis:
            raise ValueError("LayerNorm: `axis` must name at least one axis (the channel axis).")
        if not eps >= 0:
            raise ValueError(f"LayerNorm: `eps` must be a non-negative number, got {eps!r}.")
        self.eps = float(eps)
        self.batch_axis, self.channel_axis = int(batch_axis), int(channel_axis)
        self.name = f"LayerNorm(axis={axis})"

    def input_axes(self):
        return self.batch_axis, self.channel_axis

    def _axes(self, ndim, what):
        axes = sorted({a % ndim for a in self.axis})
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"{self.name}: `axis` {self.axis} out of range for {what} with "
                             f"{ndim} dimensions.")
        return tuple(axes)

    def forward(self, params, x, rng=None):
        axes = self._axes(x.ndim, f"inputs of shape {tuple(x.shape)}")
        xp = get_xp(x)
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        r = 1.0 / xp.sqrt(x.dtype.type(self.eps) + (xc * xc).mean(axis=axes, keepdims=True))
        y = xc * r
        return y, (y, r, axes)

    def apply(self, params, x, rng=None):
        return self.forward(params, x)[0]

    def backward(self, params, cache, ct):
        y, r, axes = cache
        dx = r * (ct - ct.mean(axis=axes, keepdims=True) -
                  y * (ct * y).mean(axis=axes, keepdims=True))
        return (), dx

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode of ``y = (x - m) r``, ``r = (eps + mean((x - m)^2))^(-1/2)``:
        ``dy = r (dx - mean(dx) - y mean(y dx))`` (the same self-adjoint map as ``backward``)."""
        y, (_, r, axes) = self.forward(params, x)
        return y, r * (dx - dx.mean(axis=axes, keepdims=True) -
                       y * (y * dx).mean(axis=axes, keepdims=True))

    def kernel(self, k, out_full=False):
        if not k.is_gaussian:
            raise ValueError(f"{self.name}: the infinite-width kernel needs a Gaussian input (a "
                             "Dense or Conv layer right before it), as in Neural Tangents.")
        ndim = len(k.shape1)
        axes = self._axes(ndim, f"inputs of shape {tuple(k.shape1)}")
        b, c = self.batch_axis % ndim, self.channel_axis % ndim
        if c not in axes:
            raise ValueError(f"{self.name}: normalisation over the channel axis ({c}) is necessary "
                             f"for an infinite-width limit; got axis={self.axis}.")
        spatial = [i for i in range(ndim) if i not in (b, c)]
        sp_axes = tuple(spatial.index(a) for a in axes if a not in (b, c))
        xp = get_xp(k.nngp)
        full = not k.diagonal_spatial and k.n_spatial > 0
        v1 = layer_norm_variances(xp, k.cov1, full, sp_axes, b in axes, self.eps)
        v2 = v1 if k.cov2 is None else layer_norm_variances(xp, k.cov2, full, sp_axes,
                                                              b in axes, self.eps)
        return k.replace(nngp=layer_norm_pair(xp, k.nngp, v1, v2, full),
                         ntk=layer_norm_pair(xp, k.ntk, v1, v2, full),
                         cov1=layer_norm_self(xp, k.cov1, v1, full),
                         cov2=layer_norm_self(xp, k.cov2, v2, full))


def LayerNorm(axis=-1, eps=1e-12, batch_axis=0, channel_axis=-1):
    """Layer normalisation over ``axis`` (NT's ``LayerNorm``)."""
    return _LayerNorm(axis, eps, batch_axis, channel_axis)


class _Dropout(Layer):
    def __init__(self, rate, mode="train"):
        if mode not in ("train", "test"):
            raise ValueError(f"Dropout: `mode` must be 'train' or 'test', got {mode!r}.")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"Dropout: `rate` is the probability to keep a unit and must be in "
                             f"(0, 1], got {rate!r}.")
        self.rate, self.mode = float(rate), mode
        self.name = f"Dropout({self.rate}, mode={mode!r})"

    def forward(self, params, x, rng=None):
        if self.mode == "test":
            return x, None
        if rng is None:
            raise ValueError(f"{self.name}: apply_fn needs an `rng` keyword argument in 'train' "
                             "mode (an int seed or a numpy.random.Generator), e.g. "
                             "apply_fn(params, x, rng=0).")
        xp = get_xp(x)
        keep = as_generator(rng).random(x.shape) < self.rate
        scale = xp.asarray(keep, dtype=x.dtype) * x.dtype.type(1.0 / self.rate)
        return x * scale, scale

    def apply(self, params, x, rng=None):
        return self.forward(params, x, rng=rng)[0]

    def backward(self, params, cache, ct):
        return (), (ct if cache is None else ct * cache)

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the same mask on the tangent, ``dy = dx * mask / rate``."""
        y, scale = self.forward(params, x, rng=rng)
        return y, (dx if scale is None else dx * scale)

    def kernel(self, k, out_full=False):
        if self.mode == "test":
            return k
        xp = get_xp(k.nngp)
        full = not k.diagonal_spatial and k.n_spatial > 0
        factor = 1.0 / self.rate
        pair = (lambda m: dropout_pair(xp, m, factor, full)) if k.x1_is_x2 else (lambda m: m)
        return k.replace(nngp=pair(k.nngp), ntk=pair(k.ntk),
                         cov1=dropout_self(xp, k.cov1, factor, full),
                         cov2=dropout_self(xp, k.cov2, factor, full), is_gaussian=False)


def Dropout(rate, mode="train"):
    """Dropout keeping each unit with probability ``rate`` (NT's convention)."""
    return _Dropout(rate, mode)
