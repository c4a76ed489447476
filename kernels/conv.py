"""Spatial propagation of covariances through convolutions (shared, transposed and local).

For a convolution ``z[s] = W_std / sqrt(C f) sum_{a, c} W[a, c] x[s * stride + a - lo, c]``
(``f`` the filter size, ``lo`` the padding in front) with i.i.d. standard normal weights, the
output covariance is the *diagonal convolution* of the input covariance
(Novak et al. 2019, "Bayesian deep CNNs with many channels are GPs", eq. 7;
Garriga-Alonso et al. 2019):

    K'[s, s'] = W_std^2 / f sum_a K[s * stride + a - lo, s' * stride + a - lo] + b_std^2

with zeros outside the image for ``'SAME'`` padding and indices taken modulo the image size
for ``'CIRCULAR'``. The filter is a product over spatial dimensions, so the mean over filter
offsets factorises: one pass per spatial dimension, each a sum of ``f_d`` strided slices.
The functions here compute the bracket (without ``W_std^2`` and ``b_std^2``, which the layer
applies). Layouts: ``n_batch`` leading batch axes, then ``(S1, S1', S2, S2', ...)`` for the
full spatial covariance or ``(S1, S2, ...)`` for its diagonal.

Memory: each pass holds one padded copy of its input and one accumulator of the output size,
never a dense ``(S S')^2`` operator.
"""
import math

import numpy as np

__all__ = ["PADDINGS", "out_size_and_pads", "window_mean", "transpose_pads", "conv_full",
           "conv_diag", "conv_transpose_full", "conv_transpose_diag", "local_full",
           "embed_diagonal", "fold_axis", "unfold_axis", "circular_transpose_offset"]

PADDINGS = ("VALID", "SAME", "CIRCULAR")


def out_size_and_pads(size, f, stride, padding):
    """``(out, lo, hi)``: output size and padding before/after, as ``lax`` computes them.

    ``'VALID'``: ``out = (size - f) // stride + 1`` (no padding). ``'SAME'`` and ``'CIRCULAR'``:
    ``out = ceil(size / stride)``, total padding ``max((out - 1) stride + f - size, 0)`` with
    ``lo = total // 2`` in front. ``out < 1`` means the image is too small for the filter.
    """
    if padding == "VALID":
        return (size - f) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + f - size, 0)
    return out, total // 2, total - total // 2


def transpose_pads(size, f, stride, padding):
    """``(out, pad_lo, pad_hi)`` of a transposed convolution on the stride-dilated input.

    As ``lax.conv_transpose`` (no kernel flip): ``'SAME'`` gives ``out = size * stride``,
    ``'VALID'`` gives ``out = size * stride + max(f - stride, 0)``. ``'CIRCULAR'`` is computed
    as ``'VALID'`` and then folded onto a period of ``size * stride`` (see ``fold_axis``).
    """
    if padding == "SAME":
        pad_len = f + stride - 2
        lo = f - 1 if stride > f - 1 else int(math.ceil(pad_len / 2))
    else:
        pad_len = f + stride - 2 + max(f - stride, 0)
        lo = f - 1
    hi = pad_len - lo
    dilated = (size - 1) * stride + 1
    return dilated + pad_len - f + 1, lo, hi


def circular_transpose_offset(size, f, stride):
    """``(period, offset)`` of the fold that turns a 'VALID' transposed output circular.

    Neural Tangents sums every entry of the 'VALID' output (length ``L``) onto position
    ``(p - offset) mod period`` with ``period = size * stride`` and ``offset = (L - period) // 2``.
    """
    period = size * stride
    valid = transpose_pads(size, f, stride, "VALID")[0]
    return period, (valid - period) // 2


def _pad(xp, mat, axes, lo, hi, padding):
    if lo == 0 and hi == 0:
        return mat
    widths = [(0, 0)] * mat.ndim
    for ax in axes:
        widths[ax] = (lo, hi)
    return xp.pad(mat, widths, mode="wrap" if padding == "CIRCULAR" else "constant")


def window_mean(xp, mat, axes, f, stride, padding, sum_only=False):
    """Mean (or sum) over ``a`` of ``mat`` sliced at ``s * stride + a - lo`` on ``axes`` jointly."""
    size = mat.shape[axes[0]]
    out, lo, hi = out_size_and_pads(size, f, stride, padding)
    padded = _pad(xp, mat, axes, lo, hi, padding)
    acc = None
    for a in range(f):
        idx = [slice(None)] * mat.ndim
        for ax in axes:
            idx[ax] = slice(a, a + (out - 1) * stride + 1, stride)
        piece = padded[tuple(idx)]
        if acc is None:
            acc = piece.copy()
        else:
            acc += piece
    if not sum_only and f != 1:
        acc *= acc.dtype.type(1.0 / f)
    return acc


def conv_full(xp, mat, filter_shape, strides, padding, n_batch):
    """Diagonal convolution of a full spatial covariance (shared-weight ``Conv``).

    ``out[.., s1, s1', s2, s2', ..] = mean_a mat[.., s1 t1 + a1 - lo1, s1' t1 + a1 - lo1, ..]``
    (the module docstring's bracket; ``t`` the strides), zeros outside for 'SAME', wrapped
    for 'CIRCULAR'. ``mat``: ``n_batch`` batch axes then ``(S1, S1', S2, S2', ...)``.
    """
    for d, (f, t) in enumerate(zip(filter_shape, strides)):
        ax = n_batch + 2 * d
        mat = window_mean(xp, mat, (ax, ax + 1), int(f), int(t), padding)
    return mat


def conv_diag(xp, mat, filter_shape, strides, padding, n_batch):
    """The same recursion on the spatial diagonal ``(batch.., S1, S2, ...)``:
    ``out[.., s] = mean_a mat[.., s t + a - lo]`` (exact: a diagonal entry of the output only
    needs diagonal entries of the input)."""
    for d, (f, t) in enumerate(zip(filter_shape, strides)):
        mat = window_mean(xp, mat, (n_batch + d,), int(f), int(t), padding)
    return mat


def _dilate_pad(xp, mat, axes, stride, lo, hi):
    """Insert ``stride - 1`` zeros between entries on ``axes`` and pad ``lo``/``hi`` zeros."""
    size = mat.shape[axes[0]]
    length = (size - 1) * stride + 1 + lo + hi
    shape = list(mat.shape)
    idx = [slice(None)] * mat.ndim
    for ax in axes:
        shape[ax] = length
        idx[ax] = slice(lo, lo + (size - 1) * stride + 1, stride)
    out = xp.zeros(shape, dtype=mat.dtype)
    out[tuple(idx)] = mat
    return out


def fold_axis(xp, mat, axis, period, offset):
    """``out[q] = sum_{p : (p - offset) mod period == q} mat[p]`` along ``axis``."""
    length = mat.shape[axis]
    front = (-offset) % period
    n_blocks = -(-(length + front) // period)
    widths = [(0, 0)] * mat.ndim
    widths[axis] = (front, n_blocks * period - length - front)
    padded = xp.pad(mat, widths) if front or widths[axis][1] else mat
    shape = mat.shape[:axis] + (n_blocks, period) + mat.shape[axis + 1:]
    return padded.reshape(shape).sum(axis=axis)


def unfold_axis(xp, mat, axis, length, offset):
    """Adjoint of ``fold_axis``: ``out[p] = mat[(p - offset) mod period]`` for ``p < length``."""
    period = mat.shape[axis]
    idx = (np.arange(length) - offset) % period
    return xp.take(mat, xp.asarray(idx), axis=axis)


def _transpose_pass(xp, mat, axes, f, stride, padding):
    size = mat.shape[axes[0]]
    pad_mode = "SAME" if padding == "SAME" else "VALID"
    out, lo, hi = transpose_pads(size, f, stride, pad_mode)
    padded = _dilate_pad(xp, mat, axes, stride, lo, hi)
    acc = window_mean(xp, padded, axes, f, 1, "VALID")
    if padding == "CIRCULAR":
        period, offset = circular_transpose_offset(size, f, stride)
        for ax in axes:
            acc = fold_axis(xp, acc, ax, period, offset)
    return acc


def conv_transpose_full(xp, mat, filter_shape, strides, padding, n_batch):
    """Transposed convolution of a full spatial covariance (``ConvTranspose``).

    The transposed convolution is a stride-1 convolution of the stride-dilated, padded input,
    so ``out[o, o'] = mean_a D[o + a, o' + a]`` with ``D`` the input covariance dilated and
    padded on both axes of each pair (``transpose_pads``); for 'CIRCULAR' the 'VALID' result is
    folded onto the period ``size * stride`` on both axes (Neural Tangents' convention).
    """
    for d, (f, t) in enumerate(zip(filter_shape, strides)):
        ax = n_batch + 2 * d
        mat = _transpose_pass(xp, mat, (ax, ax + 1), int(f), int(t), padding)
    return mat


def conv_transpose_diag(xp, mat, filter_shape, strides, padding, n_batch):
    """The transposed recursion on the spatial diagonal: ``out[o] = mean_a D[o + a]``.

    Exact for 'CIRCULAR' too: two entries folded onto the same position come from input
    positions a whole image apart, whose covariance is zero.
    """
    for d, (f, t) in enumerate(zip(filter_shape, strides)):
        mat = _transpose_pass(xp, mat, (n_batch + d,), int(f), int(t), padding)
    return mat


def embed_diagonal(xp, diag, n_batch):
    """Full form ``(.., S1, S1', ..)`` that is ``diag`` on the spatial diagonal and 0 elsewhere."""
    sizes = diag.shape[n_batch:]
    out = xp.zeros(diag.shape[:n_batch] + tuple(s for s in sizes for _ in (0, 1)),
                   dtype=diag.dtype)
    idx = [slice(None)] * n_batch
    for d, s in enumerate(sizes):
        shape = [1] * len(sizes)
        shape[d] = s
        ar = xp.arange(s).reshape(shape)
        idx += [ar, ar]
    out[tuple(idx)] = diag
    return out


def local_full(xp, diag, filter_shape, strides, padding, n_batch):
    """Locally connected (unshared) convolution, full output from a diagonal input.

    Different positions use independent weights, so the output covariance is zero off the
    spatial diagonal and ``conv_diag`` on it (Novak et al. 2019, section 5.1, "LCN").
    """
    return embed_diagonal(xp, conv_diag(xp, diag, filter_shape, strides, padding, n_batch),
                          n_batch)
