"""The fully-connected layer ``Dense``.

Kernel recursion (Neal 1996; Lee et al. 2018, eq. 4; Jacot et al. 2018 for the NTK;
Sohl-Dickstein et al. 2020 for the standard parameterization with width scalings ``s``):

    'ntk':       K' = W_std^2 K + b_std^2,          Theta' = K' + W_std^2 Theta
    'standard':  K' = W_std^2 K + b_std^2,          Theta' = (n / s_0) K + W_std^2 Theta + [b_std given]

where ``n`` is the layer's input width and ``K`` the input covariance (the same affine map is
applied to ``cov1``, ``cov2`` and every spatial entry: the bias is shared across positions).
"""
import numpy as np

from ..kernels import ops
from ..kernels.dense import affine
from ..backend import get_xp
from .layer import Layer, affine_jvp

__all__ = ["Dense"]


class Dense(Layer):
    """``Dense(out_dim, W_std=1., b_std=None, batch_axis=0, channel_axis=-1,
    parameterization='ntk', s=(1, 1))`` as in Neural Tangents."""

    def __init__(self, out_dim, W_std=1.0, b_std=None, batch_axis=0, channel_axis=-1,
                 parameterization="ntk", s=(1, 1)):
        if int(out_dim) != out_dim or out_dim < 1:
            raise ValueError(f"Dense: `out_dim` must be a positive integer, got {out_dim!r}.")
        parameterization = str(parameterization).lower()
        if parameterization not in ("ntk", "standard"):
            raise ValueError(f"Dense: `parameterization` must be 'ntk' or 'standard', "
                             f"got {parameterization!r}.")
        if W_std is None or not np.isfinite(W_std) or (b_std is not None and not np.isfinite(b_std)):
            raise ValueError(f"Dense: `W_std` and `b_std` must be finite numbers (b_std may be None); "
                             f"got W_std={W_std!r}, b_std={b_std!r}.")
        if len(tuple(s)) != 2 or min(s) <= 0:
            raise ValueError(f"Dense: `s` must be a pair of positive width scalings, got {s!r}.")
        self.out_dim, self.W_std, self.b_std = int(out_dim), float(W_std), b_std
        self.b_std = None if b_std is None else float(b_std)
        self.batch_axis, self.channel_axis = batch_axis, channel_axis
        self.parameterization, self.s = parameterization, tuple(s)
        self.name = f"Dense({self.out_dim})"

    def input_axes(self):
        """Raw inputs are read with this layer's batch and channel axes (as NT)."""
        return (self.batch_axis, self.channel_axis)

    # -- shapes and parameters -------------------------------------------------------------
    def _out_width(self):
        return self.out_dim * (self.s[1] if self.parameterization == "standard" else 1)

    def output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{self.name}: expected inputs with a batch and a channel axis, "
                             f"got shape {tuple(input_shape)}.")
        ax = self.channel_axis % len(input_shape)
        return tuple(input_shape[:ax]) + (self._out_width(),) + tuple(input_shape[ax + 1:])

    def init(self, rng, input_shape):
        out_shape = self.output_shape(input_shape)
        ax = self.channel_axis % len(input_shape)
        n_in = input_shape[ax]
        W = rng.standard_normal((n_in, self._out_width()))
        b = None
        if self.b_std is not None:
            b_shape = [1] * len(input_shape)
            b_shape[ax] = self._out_width()
            b = rng.standard_normal(b_shape)
        if self.parameterization == "standard":
            W = W * (self.W_std / (n_in / self.s[0]) ** 0.5)
            b = None if b is None else b * self.b_std
        return out_shape, (W, b)

    # -- finite network --------------------------------------------------------------------
    def _check(self, params, x):
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ValueError(f"{self.name}: params must be the pair (W, b) from init_fn, got "
                             f"{type(params).__name__}.")
        W = params[0]
        n_in = x.shape[self.channel_axis] if x.ndim >= 2 else None
        if x.ndim < 2 or n_in != W.shape[0]:
            raise ValueError(f"{self.name}: expected inputs with {W.shape[0]} channels on axis "
                             f"{self.channel_axis}, got shape {tuple(x.shape)}.")

    def _scales(self, n_in):
        if self.parameterization == "ntk":
            return self.W_std / n_in ** 0.5, (self.b_std or 0.0)
        return 1.0 / self.s[0] ** 0.5, 1.0

    def apply(self, params, x, rng=None):
        self._check(params, x)
        W, b = params
        xp = get_xp(x, W)
        w_scale, b_scale = self._scales(x.shape[self.channel_axis])
        xm = xp.moveaxis(x, self.channel_axis, -1)
        out = xp.moveaxis((xm @ W.astype(x.dtype, copy=False)) * x.dtype.type(w_scale),
                          -1, self.channel_axis)
        if b is not None:
            out = out + (b * b_scale).astype(x.dtype, copy=False)
        return out

    def forward(self, params, x, rng=None):
        return self.apply(params, x), x

    def backward(self, params, cache, ct):
        x = cache
        W, b = params
        xp = get_xp(x, W)
        w_scale, b_scale = self._scales(x.shape[self.channel_axis])
        xm = xp.moveaxis(x, self.channel_axis, -1).reshape(-1, W.shape[0])
        cm = xp.moveaxis(ct, self.channel_axis, -1)
        dW = (xm.T @ cm.reshape(-1, W.shape[1])) * w_scale
        db = None
        if b is not None:
            axes = tuple(i for i in range(ct.ndim) if i != self.channel_axis % ct.ndim)
            db = ct.sum(axis=axes, keepdims=True) * b_scale
        dx = xp.moveaxis((cm @ W.T.astype(ct.dtype, copy=False)) * w_scale, -1, self.channel_axis)
        return (dW, db), dx

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: ``dy = (dx W + x dW) w_scale + db b_scale`` (``affine_jvp``)."""
        return affine_jvp(self, params, x, d_params, dx)

    # -- infinite width --------------------------------------------------------------------
    def fused_op(self):
        """``ops.Affine(W_std^2, b_std^2)`` ('ntk' parameterization only; otherwise None and
        the layer runs its own ``kernel``)."""
        if self.parameterization != "ntk":
            return None
        return ops.Affine(self.W_std ** 2, 0.0 if self.b_std is None else self.b_std ** 2)

    def kernel(self, k, out_full=False):
        W2 = self.W_std ** 2
        b2 = 0.0 if self.b_std is None else self.b_std ** 2
        nngp = affine(k.nngp, W2, b2)
        ntk = k.ntk
        if ntk is not None:
            if self.parameterization == "ntk":
                ntk = nngp + W2 * ntk
            else:
                n_in = k.shape1[-1] / self.s[0]
                ntk = n_in * k.nngp + W2 * ntk + (1.0 if self.b_std is not None else 0.0)
        cov1 = affine(k.cov1, W2, b2)
        cov2 = None if k.cov2 is None else affine(k.cov2, W2, b2)
        w = self._out_width()
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
                         shape1=k.shape1[:-1] + (w,), shape2=k.shape2[:-1] + (w,),
                         is_gaussian=True)
