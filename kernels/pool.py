"""Covariances through pooling, global pooling and flattening.

Average pooling ``y[s] = 1/w sum_a x[s * stride + a - lo]`` is a fixed linear map, so the
output covariance sums the input covariance over a window on *each* axis of a pair
independently (Novak et al. 2019, section 3; Neural Tangents' ``_pool_kernel``):

    K'[s, s'] = 1 / (w(s) w(s')) sum_{a, a'} K[s t + a - lo, s' t + a' - lo]

with ``w(s) = w`` (the window size), or the number of in-image window entries when
``normalize_edges`` is set with 'SAME' padding; 'CIRCULAR' wraps around. Pooling mixes
different positions, so it needs the full spatial covariance; the ``*_diag`` functions follow
Neural Tangents' rule for a diagonal input, valid only when the off-diagonal covariances are
zero (after a locally connected layer): the diagonal of the pooled diagonal matrix.

Layouts as in ``kernels.conv``: ``n_batch`` batch axes, then ``(S1, S1', S2, S2', ...)`` or
``(S1, S2, ...)``.
"""
import numpy as np

from .conv import out_size_and_pads, window_mean

__all__ = ["avg_pool_full", "avg_pool_diag", "sum_pool_full", "sum_pool_diag",
           "global_avg_full", "global_avg_diag", "global_sum_full", "global_sum_diag",
           "flatten_full", "flatten_diag", "window_counts"]


def window_counts(size, w, stride, padding, normalize_edges):
    """Per output position, the number the average divides by (a NumPy vector)."""
    out, lo, _ = out_size_and_pads(size, w, stride, padding)
    if not (normalize_edges and padding == "SAME"):
        return np.full(out, float(w))
    start = np.arange(out) * stride - lo
    return (np.minimum(start + w, size) - np.maximum(start, 0)).astype(float)


def _divide(xp, mat, counts, axes):
    for c, ax in zip(counts, axes):
        shape = [1] * mat.ndim
        shape[ax] = c.size
        mat = mat / xp.asarray(c.reshape(shape), dtype=mat.dtype)
    return mat


def sum_pool_full(xp, mat, window, strides, padding, n_batch):
    """``K'[s, s'] = sum_{a, a'} K[s t + a - lo, s' t + a' - lo]`` on every pair of axes."""
    for d, (w, t) in enumerate(zip(window, strides)):
        for ax in (n_batch + 2 * d, n_batch + 2 * d + 1):
            mat = window_mean(xp, mat, (ax,), int(w), int(t), padding, sum_only=True)
    return mat


def avg_pool_full(xp, mat, window, strides, padding, normalize_edges, n_batch):
    """``K'[s, s'] = sum_{a, a'} K[s t + a - lo, s' t + a' - lo] / (w(s) w(s'))``."""
    sizes = [mat.shape[n_batch + 2 * d] for d in range(len(window))]
    out = sum_pool_full(xp, mat, window, strides, padding, n_batch)
    counts, axes = [], []
    for d, (s, w, t) in enumerate(zip(sizes, window, strides)):
        c = window_counts(s, int(w), int(t), padding, normalize_edges)
        counts += [c, c]
        axes += [n_batch + 2 * d, n_batch + 2 * d + 1]
    return _divide(xp, out, counts, axes)


def sum_pool_diag(xp, mat, window, strides, padding, n_batch):
    """Diagonal input with zero off-diagonals: ``K'[s] = sum_a K[s t + a - lo]``."""
    for d, (w, t) in enumerate(zip(window, strides)):
        mat = window_mean(xp, mat, (n_batch + d,), int(w), int(t), padding, sum_only=True)
    return mat


def avg_pool_diag(xp, mat, window, strides, padding, normalize_edges, n_batch):
    """Diagonal input with zero off-diagonals: ``K'[s] = sum_a K[s t + a - lo] / w(s)^2``."""
    sizes = [mat.shape[n_batch + d] for d in range(len(window))]
    out = sum_pool_diag(xp, mat, window, strides, padding, n_batch)
    counts = [window_counts(s, int(w), int(t), padding, normalize_edges) ** 2
              for s, w, t in zip(sizes, window, strides)]
    return _divide(xp, out, counts, [n_batch + d for d in range(len(window))])


def global_avg_full(xp, mat, n_batch):
    """Global average pooling: the mean of ``K[s, s']`` over all pairs of positions."""
    return mat.mean(axis=tuple(range(n_batch, mat.ndim)))


def global_sum_full(xp, mat, n_batch):
    """Global sum pooling: the sum of ``K[s, s']`` over all pairs of positions."""
    return mat.sum(axis=tuple(range(n_batch, mat.ndim)))


def global_avg_diag(xp, mat, n_batch):
    """Neural Tangents' rule for a diagonal input (zero off-diagonals): ``sum_s K[s] / S^2``."""
    size = int(np.prod(mat.shape[n_batch:]))
    return mat.sum(axis=tuple(range(n_batch, mat.ndim))) / mat.dtype.type(size * size)


def global_sum_diag(xp, mat, n_batch):
    """Neural Tangents' rule for a diagonal input (zero off-diagonals): ``sum_s K[s]``."""
    return mat.sum(axis=tuple(range(n_batch, mat.ndim)))


def flatten_diag(xp, mat, n_batch):
    """Flatten then a dense readout sees ``mean_s K[s, s]``: the mean of the diagonal."""
    return mat.mean(axis=tuple(range(n_batch, mat.ndim)))


def flatten_full(xp, mat, n_batch):
    """``mean_s K[s, s]`` taken from a full spatial covariance (its normalised trace)."""
    while mat.ndim > n_batch:
        mat = xp.trace(mat, axis1=-2, axis2=-1) / mat.dtype.type(mat.shape[-1])
    return mat
