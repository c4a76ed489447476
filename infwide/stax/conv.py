"""Convolutions: ``Conv``, ``ConvTranspose`` and ``ConvLocal`` with Neural Tangents' API.

Kernel recursion (Novak et al. 2019, eq. 7; Arora et al. 2019 for the CNTK; Sohl-Dickstein et
al. 2020 for the standard parameterization), with ``A`` the diagonal convolution of
``kernels.conv`` (mean over filter offsets of the covariance shifted on both positions):

    'ntk':       K' = W_std^2 A(K) + b_std^2,    Theta' = K' + W_std^2 A(Theta)
    'standard':  K' = W_std^2 A(K) + b_std^2,    Theta' = (C f / s_0) A(K) + W_std^2 A(Theta)
                                                          + [b_std given]

``ConvTranspose`` uses the transposed operator, ``ConvLocal`` (unshared filters) keeps only the
spatial diagonal (its bias and all off-diagonal covariances vanish between positions).
The finite network follows ``lax``: ``dimension_numbers`` (default NHWC / HWIO), weights stored
in the ``rhs`` layout, ``'CIRCULAR'`` padding as periodic 'SAME' padding.
"""
import numpy as np

from ..backend import get_xp
from ..kernels.conv import (conv_diag, conv_full, conv_transpose_diag, conv_transpose_full,
                            embed_diagonal, out_size_and_pads, transpose_pads,
                            circular_transpose_offset)
from ..kernels.dense import affine
from ..kernels import ops as kops
from ..kernels.forms import full_to_diagonal
from . import _convops as ops
from ._spatial import ConvSpec, int_tuple, parse_padding, permute_kernel_spatial
from .layer import Layer, affine_jvp

__all__ = ["Conv", "ConvTranspose", "ConvLocal"]


def _inverse(perm):
    return tuple(int(i) for i in np.argsort(perm))


class _ConvBase(Layer):
    """Shared validation, parameters, finite pass and kernel wiring of the convolutions."""

    kind = "Conv"

    def __init__(self, out_chan, filter_shape, strides=None, padding="VALID", W_std=1.0,
                 b_std=None, dimension_numbers=None, parameterization="ntk", s=(1, 1)):
        if int(out_chan) != out_chan or out_chan < 1:
            raise ValueError(f"{self.kind}: `out_chan` must be a positive integer, "
                             f"got {out_chan!r}.")
        self.name = f"{self.kind}({int(out_chan)}, {tuple(filter_shape)})"
        n = len(tuple(filter_shape))
        if n < 1:
            raise ValueError(f"{self.name}: `filter_shape` needs at least one spatial dimension.")
        self.filter_shape = int_tuple(filter_shape, n, "filter_shape", self.name)
        self.strides = int_tuple((1,) * n if strides is None else strides, n, "strides", self.name)
        self.padding = parse_padding(padding, self.name)
        self.parameterization = str(parameterization).lower()
        if self.parameterization not in ("ntk", "standard"):
            raise ValueError(f"{self.name}: `parameterization` must be 'ntk' or 'standard', "
                             f"got {parameterization!r}.")
        if W_std is None or not np.isfinite(W_std) or \
                (b_std is not None and not np.isfinite(b_std)):
            raise ValueError(f"{self.name}: `W_std` and `b_std` must be finite numbers (b_std may "
                             f"be None); got W_std={W_std!r}, b_std={b_std!r}.")
        if len(tuple(s)) != 2 or min(s) <= 0:
            raise ValueError(f"{self.name}: `s` must be a pair of positive width scalings, "
                             f"got {s!r}.")
        self.out_chan, self.W_std = int(out_chan), float(W_std)
        self.b_std = None if b_std is None else float(b_std)
        self.s = tuple(s)
        self.spec = ConvSpec(dimension_numbers, n, self.name)
        self._f = self.spec.to_lhs_order(self.filter_shape)   # kernel (lhs) spatial order
        self._t = self.spec.to_lhs_order(self.strides)

    # -- shapes ----------------------------------------------------------------------------
    def input_axes(self):
        return self.spec.batch_axis, self.spec.channel_axis

    def _width(self):
        return self.out_chan * (self.s[1] if self.parameterization == "standard" else 1)

    def _out_sizes(self, sizes, shape):
        out = []
        for d, (size, f, t) in enumerate(zip(sizes, self._f, self._t)):
            o = out_size_and_pads(size, f, t, self.padding)[0]
            if o < 1:
                raise ValueError(f"{self.name}: input of shape {tuple(shape)} is too small for the "
                                 f"filter {self.filter_shape} with padding '{self.padding}': "
                                 f"spatial axis {self.spec.spatial[d]!r} has size {size} < {f}.")
            out.append(o)
        return tuple(out)

    def _canonical_shape(self, input_shape):
        n = len(self.filter_shape)
        if len(input_shape) != n + 2:
            raise ValueError(f"{self.name}: expected inputs with {n} spatial dimensions laid out "
                             f"as {self.spec.lhs!r}, got shape {tuple(input_shape)}.")
        return tuple(input_shape[i] for i in self.spec.canonical_input_perm())

    def output_shape(self, input_shape):
        canon = self._canonical_shape(input_shape)
        out = (canon[0],) + self._out_sizes(canon[1:-1], input_shape) + (self._width(),)
        return tuple(out[i] for i in self.spec.out_from_canonical_perm())

    def init(self, rng, input_shape):
        out_shape = self.output_shape(input_shape)
        canon = self._canonical_shape(input_shape)
        W = rng.standard_normal(self._weight_shape(canon, out_shape))
        b = None if self.b_std is None else rng.standard_normal(self._bias_shape(out_shape))
        if self.parameterization == "standard":
            W = W * (self.W_std / (self._fan_in(canon[-1]) / self.s[0]) ** 0.5)
            b = None if b is None else b * self.b_std
        return out_shape, (W, b)

    def _weight_shape(self, canon, out_shape):
        sizes = dict(zip(self.spec.rhs_spatial, self.filter_shape))
        return tuple(self._width() if c == "O" else canon[-1] if c == "I" else sizes[c]
                     for c in self.spec.rhs)

    def _bias_shape(self, out_shape):
        return tuple(self._width() if c == "C" else 1 for c in self.spec.out)

    def _fan_in(self, n_in):
        return n_in * int(np.prod(self.filter_shape))

    def _scales(self, n_in):
        if self.parameterization == "ntk":
            return self.W_std / self._fan_in(n_in) ** 0.5, (self.b_std or 0.0)
        return 1.0 / self.s[0] ** 0.5, 1.0

    # -- finite network --------------------------------------------------------------------
    def _check(self, params, x):
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ValueError(f"{self.name}: params must be the pair (W, b) from init_fn, got "
                             f"{type(params).__name__}.")
        canon = self._canonical_shape(x.shape)
        n_in = self._weight_in_channels(params[0])
        if canon[-1] != n_in:
            raise ValueError(f"{self.name}: expected inputs with {n_in} channels on axis "
                             f"{self.spec.channel_axis} ({self.spec.lhs!r}), got shape "
                             f"{tuple(x.shape)}.")
        self._out_sizes(canon[1:-1], x.shape)

    def _weight_in_channels(self, W):
        return W.shape[self.spec.rhs.index("I")]

    def forward(self, params, x, rng=None):
        self._check(params, x)
        W, b = params
        xp = get_xp(x, W)
        xc = xp.transpose(x, self.spec.canonical_input_perm())
        w_scale, b_scale = self._scales(xc.shape[-1])
        Wc = self._canonical_weight(xp, W, xc.shape).astype(x.dtype, copy=False)
        y, inner = self._forward_canonical(xp, xc, Wc)
        y = xp.transpose(y * x.dtype.type(w_scale), self.spec.out_from_canonical_perm())
        if b is not None:
            y = y + (b * b_scale).astype(x.dtype, copy=False)
        return y, (inner, xc.shape, x.dtype)

    def apply(self, params, x, rng=None):
        return self.forward(params, x)[0]

    def backward(self, params, cache, ct):
        W, b = params
        inner, canon_shape, dtype = cache
        xp = get_xp(ct, W)
        w_scale, b_scale = self._scales(canon_shape[-1])
        ctc = xp.transpose(ct, _inverse(self.spec.out_from_canonical_perm()))
        Wc = self._canonical_weight(xp, W, canon_shape).astype(ct.dtype, copy=False)
        dWc, dxc = self._backward_canonical(xp, inner, Wc, ctc, canon_shape)
        dW = self._weight_from_canonical(xp, dWc * w_scale, W.shape)
        dx = xp.transpose(dxc * ct.dtype.type(w_scale), _inverse(self.spec.canonical_input_perm()))
        db = None
        if b is not None:
            axes = tuple(i for i in range(ct.ndim) if b.shape[i] == 1)
            db = ct.sum(axis=axes, keepdims=True) * b_scale
        return (dW, db), dx

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the convolution is bilinear in ``(W, x)`` (``affine_jvp``)."""
        return affine_jvp(self, params, x, d_params, dx)

    def _canonical_weight(self, xp, W, canon_shape):
        return xp.transpose(W, self.spec.canonical_weight_perm())

    def _weight_from_canonical(self, xp, dWc, shape):
        return xp.transpose(dWc, _inverse(self.spec.canonical_weight_perm()))

    def _pads(self, sizes):
        return [out_size_and_pads(s, f, t, self.padding)[1:] for s, f, t in
                zip(sizes, self._f, self._t)]

    def _forward_canonical(self, xp, xc, Wc):
        sizes = xc.shape[1:-1]
        xpad = ops.pad_input(xp, xc, self._pads(sizes), self.padding)
        return ops.conv_apply(xp, xpad, Wc, self._t, self._out_sizes(sizes, xc.shape)), xpad

    def _backward_canonical(self, xp, xpad, Wc, ctc, canon_shape):
        dW, dxpad = ops.conv_backward(xp, xpad, Wc, self._t, ctc)
        sizes = canon_shape[1:-1]
        return dW, ops.pad_input_adjoint(xp, dxpad, sizes, self._pads(sizes), self.padding)

    # -- infinite width --------------------------------------------------------------------
    def input_needs_full(self, out_full):
        return out_full

    def _kernel_op(self, full):
        return conv_full if full else conv_diag

    def kernel(self, k, out_full=False):
        shape1 = self._kernel_input_shape(k)
        xp = get_xp(k.nngp)
        full = not k.diagonal_spatial
        op = self._kernel_op(full)
        u = k.map_covariances(lambda m, nb: op(xp, m, self._f, self._t, self.padding, nb))
        W2 = self.W_std ** 2
        b2 = 0.0 if self.b_std is None else self.b_std ** 2
        nngp = affine(u.nngp, W2, b2)
        ntk = u.ntk
        if ntk is not None:
            if self.parameterization == "ntk":
                ntk = nngp + ntk * ntk.dtype.type(W2)
            else:
                ntk = u.nngp * u.nngp.dtype.type(self._fan_in(shape1[-1]) / self.s[0]) + \
                    ntk * ntk.dtype.type(W2)
                ntk = affine(ntk, 1.0, 1.0 if self.b_std is not None else 0.0)
        cov1 = affine(u.cov1, W2, b2)
        cov2 = affine(u.cov2, W2, b2)
        return self._finish_kernel(xp, k, shape1, nngp, ntk, cov1, cov2, full)

    def _kernel_input_shape(self, k):
        n = len(self.filter_shape)
        if k.n_spatial != n:
            raise ValueError(f"{self.name}: expected a kernel with {n} spatial dimensions, got "
                             f"inputs of shape {tuple(k.shape1)} (canonical N, spatial.., C).")
        self._out_sizes(k.shape1[1:-1], k.shape1)
        self._out_sizes(k.shape2[1:-1], k.shape2)
        return k.shape1

    def _finish_kernel(self, xp, k, shape1, nngp, ntk, cov1, cov2, full):
        perm = self.spec.out_perm
        sizes = nngp.shape[2::2] if full else nngp.shape[2:]
        sizes = tuple(sizes[i] for i in perm)
        w = self._width()
        out = k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2)
        return out.map_covariances(lambda m, nb: permute_kernel_spatial(xp, m, perm, nb, full),
                                   shape1=(shape1[0],) + sizes + (w,),
                                   shape2=(k.shape2[0],) + sizes + (w,),
                                   diagonal_spatial=not full, is_gaussian=True)


class Conv(_ConvBase):
    """``Conv(out_chan, filter_shape, strides=None, padding='VALID', W_std=1., b_std=None,
    dimension_numbers=None, parameterization='ntk', s=(1, 1))`` as in Neural Tangents."""

    kind = "Conv"

    def fused_op(self):
        """``ops.Conv(filter_shape, strides, padding, W_std^2, b_std^2)`` for 'ntk'
        convolutions (any strides) whose output keeps the input's spatial order; filter and
        strides in the kernel's spatial order. Else None."""
        if self.parameterization != "ntk" or self.spec.out_perm != tuple(range(len(self._f))):
            return None
        return kops.Conv(tuple(self._f), tuple(self._t), self.padding, self.W_std ** 2,
                         0.0 if self.b_std is None else self.b_std ** 2)


class ConvTranspose(_ConvBase):
    """``ConvTranspose(out_chan, filter_shape, strides=None, padding='VALID', W_std=1.,
    b_std=None, dimension_numbers=None, parameterization='ntk', s=(1, 1))`` as in Neural
    Tangents (``lax.conv_transpose`` without kernel flip; 'CIRCULAR' folds the 'VALID' output
    onto the period ``size * stride``)."""

    kind = "ConvTranspose"

    def _out_sizes(self, sizes, shape):
        return tuple(s * t if self.padding != "VALID" else s * t + max(f - t, 0)
                     for s, f, t in zip(sizes, self._f, self._t))

    def _tpads(self, sizes):
        mode = "SAME" if self.padding == "SAME" else "VALID"
        return [transpose_pads(s, f, t, mode)[1:] for s, f, t in zip(sizes, self._f, self._t)]

    def _circular(self, sizes):
        return [circular_transpose_offset(s, f, t) for s, f, t in zip(sizes, self._f, self._t)]

    def _forward_canonical(self, xp, xc, Wc):
        sizes = xc.shape[1:-1]
        xd = ops.dilate_pad(xp, xc, self._t, self._tpads(sizes))
        ones = (1,) * len(sizes)
        y = ops.conv_apply(xp, xd, Wc, ones, tuple(n - f + 1 for n, f in
                                                   zip(xd.shape[1:-1], self._f)))
        if self.padding == "CIRCULAR":
            per, off = zip(*self._circular(sizes))
            y = ops.fold_spatial(xp, y, per, off)
        return y, xd

    def _backward_canonical(self, xp, xd, Wc, ctc, canon_shape):
        sizes = canon_shape[1:-1]
        if self.padding == "CIRCULAR":
            lengths = tuple(n - f + 1 for n, f in zip(xd.shape[1:-1], self._f))
            ctc = ops.unfold_spatial(xp, ctc, lengths, [o for _, o in self._circular(sizes)])
        dW, dxd = ops.conv_backward(xp, xd, Wc, (1,) * len(sizes), ctc)
        return dW, ops.dilate_pad_adjoint(dxd, sizes, self._t, self._tpads(sizes))

    def _kernel_op(self, full):
        return conv_transpose_full if full else conv_transpose_diag


class ConvLocal(_ConvBase):
    """``ConvLocal(out_chan, filter_shape, strides=None, padding='VALID', W_std=1., b_std=None,
    dimension_numbers=None, parameterization='ntk', s=(1, 1))``: unshared filters (a locally
    connected layer) as in Neural Tangents. Weights ``rhs``-shaped with the ``I`` axis holding
    ``C_in * prod(filter_shape)`` (channel-major) and spatial axes the output positions."""

    kind = "ConvLocal"

    def _weight_shape(self, canon, out_shape):
        osz = dict(zip(self.spec.spatial, self._out_sizes(canon[1:-1], canon)))
        i = canon[-1] * int(np.prod(self.filter_shape))
        return tuple(self._width() if c == "O" else i if c == "I" else osz[c]
                     for c in self.spec.rhs)

    def _bias_shape(self, out_shape):
        return tuple(1 if c == "N" else out_shape[i] for i, c in enumerate(self.spec.out))

    def _weight_in_channels(self, W):
        return W.shape[self.spec.rhs.index("I")] // int(np.prod(self.filter_shape))

    def _canonical_weight(self, xp, W, canon_shape):
        n = len(self._f)
        Wt = xp.transpose(W, self.spec.canonical_weight_perm())      # (O.., I, O)
        out_sp, c_in = Wt.shape[:n], canon_shape[-1]
        Wt = Wt.reshape(out_sp + (c_in,) + self.filter_shape + (Wt.shape[-1],))
        f_axes = tuple(n + 1 + p for p in self.spec.filter_perm)      # rhs filter axes, lhs order
        return xp.transpose(Wt, tuple(range(n)) + f_axes + (n, 2 * n + 1))

    def _weight_from_canonical(self, xp, dWc, shape):
        n = len(self._f)
        f_axes = tuple(n + 1 + p for p in self.spec.filter_perm)
        forward = tuple(range(n)) + f_axes + (n, 2 * n + 1)
        d = xp.transpose(dWc, _inverse(forward))
        d = d.reshape(d.shape[:n] + (-1, d.shape[-1]))
        return xp.transpose(d, _inverse(self.spec.canonical_weight_perm()))

    def _forward_canonical(self, xp, xc, Wc):
        sizes = xc.shape[1:-1]
        xpad = ops.pad_input(xp, xc, self._pads(sizes), self.padding)
        return ops.local_apply(xp, xpad, Wc, self._t, self._out_sizes(sizes, xc.shape)), xpad

    def _backward_canonical(self, xp, xpad, Wc, ctc, canon_shape):
        dW, dxpad = ops.local_backward(xp, xpad, Wc, self._t, ctc)
        sizes = canon_shape[1:-1]
        return dW, ops.pad_input_adjoint(xp, dxpad, sizes, self._pads(sizes), self.padding)

    def input_needs_full(self, out_full):
        return False

    def kernel(self, k, out_full=False):
        if not k.diagonal_spatial:
            xp = get_xp(k.nngp)
            k = k.map_covariances(lambda m, nb: full_to_diagonal(xp, m, nb),
                                  diagonal_spatial=True)
        out = super().kernel(k, out_full=False)
        if not out_full or out.n_spatial == 0:
            return out
        xp = get_xp(out.nngp)
        return out.map_covariances(lambda m, nb: embed_diagonal(xp, m, nb),
                                   diagonal_spatial=False)
