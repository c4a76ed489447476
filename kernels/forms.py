"""Conversions between the spatial forms of a covariance tensor.

A full spatial covariance has shape ``(B..., S1, S1', S2, S2', ...)``; its diagonal form
``(B..., S1, S2, ...)`` keeps the entries with ``S_i == S_i'``. The diagonal of the full form
equals the diagonal form computed directly (both are the same expectations).
"""
import string

__all__ = ["full_to_diagonal", "spatial_variances", "self_variances"]


def full_to_diagonal(xp, mat, n_batch):
    """Take the spatial diagonal of a full covariance with ``n_batch`` leading batch axes."""
    n_sp = (mat.ndim - n_batch) // 2
    b = string.ascii_letters[:n_batch]
    s = string.ascii_letters[n_batch:n_batch + n_sp]
    src = b + "".join(c + c for c in s)
    return xp.einsum(f"{src}->{b}{s}", mat)


def spatial_variances(xp, cov, full, side):
    """Per-position variances of one batch, shaped to broadcast against a pair tensor.

    ``cov`` is a per-input covariance ``(N,)``, ``(N, S...)`` (diagonal) or
    ``(N, S1, S1', ...)`` (full). ``side`` is 1 for the first batch of a pair tensor
    ``(N1, N2, ...)`` and 2 for the second. In the full form the variance of entry
    ``(s1, s1', s2, s2', ...)`` is ``cov[i, s1, s1, s2, s2, ...]`` for side 1 and
    ``cov[j, s1', s1', ...]`` for side 2.
    """
    if not full:
        return cov[:, None] if side == 1 else cov[None, :]
    var = full_to_diagonal(xp, cov, 1)          # (N, S1, S2, ...)
    n_sp = var.ndim - 1
    shape = [var.shape[0]]
    for d in range(n_sp):
        shape += [var.shape[1 + d], 1] if side == 1 else [1, var.shape[1 + d]]
    var = var.reshape(shape)
    return var[:, None] if side == 1 else var[None, :]


def self_variances(xp, cov, full):
    """``(left, right)`` variances for a per-input covariance ``cov`` itself.

    Diagonal form: both are ``cov``. Full form ``(N, S1, S1', ...)``: left is the variance at
    ``(s1, s2, ...)`` broadcast over the primed axes, right the one at ``(s1', s2', ...)``.
    """
    if not full:
        return cov, cov
    var = full_to_diagonal(xp, cov, 1)
    n_sp = var.ndim - 1
    left, right = [var.shape[0]], [var.shape[0]]
    for d in range(n_sp):
        left += [var.shape[1 + d], 1]
        right += [1, var.shape[1 + d]]
    return var.reshape(left), var.reshape(right)
