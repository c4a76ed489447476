"""Covariances through layer normalisation and dropout.

LayerNorm (Neural Tangents' ``LayerNorm``; Xiao et al. 2020 for the infinite-width limit):
normalising over the channels (and optionally some spatial / batch axes) divides a
Gaussian pre-activation by the root of its mean variance, a deterministic number in the
limit, so

    K'[i, j, s, s'] = K[i, j, s, s'] / sqrt(v1[i, s] v2[j, s'])
    v[i, s] = eps + mean over the normalised axes of K[i, i, s, s]

and the same for the NTK. Dropout with keep probability ``p`` (NT's ``Dropout``; Srivastava
et al. 2014): independent masks per input, position and channel, so only an input's own
variance at the same position changes, ``K'[i, i, s, s] = K[i, i, s, s] / p``.
"""
from .forms import full_to_diagonal

__all__ = ["layer_norm_variances", "layer_norm_pair", "layer_norm_self", "dropout_self",
           "dropout_pair"]


def layer_norm_variances(xp, cov, full, spatial_axes, over_batch, eps):
    """``v[i, s] = eps + mean`` of the per-position variances over ``spatial_axes``
    (indices into the spatial axes) and over the batch when ``over_batch`` (keepdims)."""
    var = full_to_diagonal(xp, cov, 1) if full else cov
    var = var + var.dtype.type(eps)
    axes = tuple(1 + a for a in spatial_axes) + ((0,) if over_batch else ())
    return var.mean(axis=axes, keepdims=True) if axes else var


def _side(v, full, side):
    """Shape ``v`` (N, S..) to broadcast on a pair tensor; side 1, 2, or 'l'/'r' for a self one."""
    n_sp = v.ndim - 1
    if not full:
        return {1: v[:, None], 2: v[None, :], "l": v, "r": v}[side]
    shape = [v.shape[0]]
    for d in range(n_sp):
        shape += [v.shape[1 + d], 1] if side in (1, "l") else [1, v.shape[1 + d]]
    v = v.reshape(shape)
    return {1: v[:, None], 2: v[None, :], "l": v, "r": v}[side]


def layer_norm_pair(xp, mat, v1, v2, full):
    """``mat[i, j, s, s'] / sqrt(v1[i, s] v2[j, s'])`` (``None`` passes through)."""
    if mat is None:
        return None
    # sqrt of each side, not of the product: v1 v2 overflows float32 from v ~ 2e19 (inf, and
    # the kernel silently became 0) although the normalised result is of order 1.
    return mat / (xp.sqrt(_side(v1, full, 1)) * xp.sqrt(_side(v2, full, 2)))


def layer_norm_self(xp, cov, v, full):
    """``cov[i, s, s'] / sqrt(v[i, s] v[i, s'])`` for a per-input covariance."""
    if cov is None:
        return None
    return cov / (xp.sqrt(_side(v, full, "l")) * xp.sqrt(_side(v, full, "r")))


def _spatial_diagonal_index(xp, sizes, n_batch, batch_index):
    idx = list(batch_index)
    for d, s in enumerate(sizes):
        shape = [1] * len(sizes)
        shape[d] = s
        ar = xp.arange(s).reshape(shape)
        idx += [ar, ar]
    return tuple(idx)


def dropout_self(xp, cov, factor, full):
    """Per-input covariance after dropout: its same-position entries times ``factor = 1/p``."""
    if cov is None:
        return None
    if not full:
        return cov * cov.dtype.type(factor)
    out = cov.copy()
    sizes = cov.shape[1::2]
    n = cov.shape[0]
    idx = _spatial_diagonal_index(xp, sizes, 1, [xp.arange(n).reshape((n,) + (1,) * len(sizes))])
    out[idx] *= cov.dtype.type(factor)
    return out


def dropout_pair(xp, mat, factor, full):
    """Pair covariance of a batch with itself after dropout: entries with the same input and
    the same position times ``factor``."""
    if mat is None:
        return None
    out = mat.copy()
    n = min(mat.shape[0], mat.shape[1])
    sizes = mat.shape[2::2] if full else mat.shape[2:]
    ar = xp.arange(n).reshape((n,) + (1,) * len(sizes))
    if full:
        idx = _spatial_diagonal_index(xp, sizes, 2, [ar, ar])
    else:
        idx = (ar, ar)
    out[idx] *= mat.dtype.type(factor)
    return out
