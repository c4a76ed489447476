"""Finite-network convolutions and their hand-derived adjoints (canonical layout).

Inputs are ``(N, S1.., C)``; shared filters ``(f1.., I, O)``; local filters
``(O1.., f1.., I, O)`` (one filter per output position). A convolution is a sum over filter
offsets ``a`` of a strided slice of the padded input times ``W[a]``, so its VJP is the same
sum with the slices scattered back: ``dW[a] = slice_a(x)^T ct`` and
``dx_padded[slice_a] += ct W[a]^T``. Padding is zero ('VALID'/'SAME') or periodic ('CIRCULAR',
whose adjoint folds the wrapped border back with ``kernels.conv.fold_axis``).
"""
import itertools

from ..kernels.conv import fold_axis, unfold_axis

__all__ = ["pad_input", "pad_input_adjoint", "dilate_pad", "dilate_pad_adjoint", "conv_apply",
           "conv_backward", "local_apply", "local_backward", "fold_spatial", "unfold_spatial"]


def pad_input(xp, x, pads, padding):
    """Pad the spatial axes of ``x`` by ``pads[d] = (lo, hi)`` (zeros, or periodic for CIRCULAR)."""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    if padding == "CIRCULAR":
        for d, (lo, hi) in enumerate(pads):
            x = unfold_axis(xp, x, 1 + d, x.shape[1 + d] + lo + hi, lo)
        return x
    return xp.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])


def pad_input_adjoint(xp, g, sizes, pads, padding):
    """Adjoint of ``pad_input``: crop the zero padding, or fold periodic padding back."""
    if padding == "CIRCULAR":
        for d, (lo, _) in enumerate(pads):
            g = fold_axis(xp, g, 1 + d, sizes[d], lo)
        return g
    idx = (slice(None),) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, sizes)) + \
        (slice(None),)
    return g[idx]


def dilate_pad(xp, x, strides, pads):
    """Insert ``stride - 1`` zeros between spatial entries, then pad ``(lo, hi)`` zeros."""
    sizes = x.shape[1:-1]
    shape = [x.shape[0]]
    idx = [slice(None)]
    for s, t, (lo, hi) in zip(sizes, strides, pads):
        shape.append((s - 1) * t + 1 + lo + hi)
        idx.append(slice(lo, lo + (s - 1) * t + 1, t))
    out = xp.zeros(tuple(shape) + (x.shape[-1],), dtype=x.dtype)
    out[tuple(idx) + (slice(None),)] = x
    return out


def dilate_pad_adjoint(g, sizes, strides, pads):
    idx = (slice(None),) + tuple(slice(lo, lo + (s - 1) * t + 1, t)
                                 for s, t, (lo, _) in zip(sizes, strides, pads)) + (slice(None),)
    return g[idx]


def fold_spatial(xp, y, periods, offsets):
    for d, (p, o) in enumerate(zip(periods, offsets)):
        y = fold_axis(xp, y, 1 + d, p, o)
    return y


def unfold_spatial(xp, g, lengths, offsets):
    for d, (n, o) in enumerate(zip(lengths, offsets)):
        g = unfold_axis(xp, g, 1 + d, n, o)
    return g


def _slices(a, strides, out_sizes):
    return (slice(None),) + tuple(slice(ai, ai + (o - 1) * t + 1, t)
                                  for ai, t, o in zip(a, strides, out_sizes)) + (slice(None),)


def _offsets(filter_shape):
    return itertools.product(*[range(f) for f in filter_shape])


def conv_apply(xp, xpad, W, strides, out_sizes):
    """``y[n, o, :] = sum_a xpad[n, o * t + a, :] @ W[a]`` (no scaling)."""
    n_sp = len(strides)
    y = xp.zeros((xpad.shape[0],) + tuple(out_sizes) + (W.shape[-1],), dtype=xpad.dtype)
    for a in _offsets(W.shape[:n_sp]):
        y += xpad[_slices(a, strides, out_sizes)] @ W[a]
    return y


def conv_backward(xp, xpad, W, strides, ct):
    """``(dW, dxpad)`` of ``conv_apply`` for the cotangent ``ct``."""
    n_sp = len(strides)
    out_sizes = ct.shape[1:-1]
    dW = xp.empty_like(W)
    dx = xp.zeros_like(xpad)
    ct2 = ct.reshape(-1, ct.shape[-1])
    for a in _offsets(W.shape[:n_sp]):
        sl = _slices(a, strides, out_sizes)
        dW[a] = xpad[sl].reshape(-1, W.shape[-2]).T @ ct2
        dx[sl] += ct @ W[a].T
    return dW, dx


def local_apply(xp, xpad, Wl, strides, out_sizes):
    """``y[n, o, :] = sum_a xpad[n, o * t + a, :] @ Wl[o, a]`` (unshared filters)."""
    n_sp = len(strides)
    n, n_pos = xpad.shape[0], int(_prod(out_sizes))
    y = xp.zeros((n, n_pos, Wl.shape[-1]), dtype=xpad.dtype)
    for a in _offsets(Wl.shape[n_sp:2 * n_sp]):
        xs = xpad[_slices(a, strides, out_sizes)].reshape(n, n_pos, -1)
        wa = Wl[(slice(None),) * n_sp + a].reshape(n_pos, Wl.shape[-2], Wl.shape[-1])
        y += xp.einsum("npi,pio->npo", xs, wa)
    return y.reshape((n,) + tuple(out_sizes) + (Wl.shape[-1],))


def local_backward(xp, xpad, Wl, strides, ct):
    """``(dWl, dxpad)`` of ``local_apply``."""
    n_sp = len(strides)
    out_sizes = ct.shape[1:-1]
    n, n_pos = ct.shape[0], int(_prod(out_sizes))
    ct3 = ct.reshape(n, n_pos, ct.shape[-1])
    dW = xp.empty_like(Wl)
    dx = xp.zeros_like(xpad)
    for a in _offsets(Wl.shape[n_sp:2 * n_sp]):
        sl = _slices(a, strides, out_sizes)
        idx = (slice(None),) * n_sp + a
        xs = xpad[sl].reshape(n, n_pos, -1)
        wa = Wl[idx].reshape(n_pos, Wl.shape[-2], Wl.shape[-1])
        dW[idx] = xp.einsum("npi,npo->pio", xs, ct3).reshape(Wl[idx].shape)
        dx[sl] += xp.einsum("npo,pio->npi", ct3, wa).reshape(xs.shape[:1] + dx[sl].shape[1:])
    return dW, dx


def _prod(t):
    out = 1
    for v in t:
        out *= int(v)
    return out
