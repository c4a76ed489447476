"""Affine maps of covariances.

For ``z = W x / sqrt(n) * W_std + b_std * b`` with i.i.d. standard normal ``W`` and ``b``,
the output covariance is ``W_std^2 K + b_std^2`` for every pair of inputs and positions
(Neal 1996; Lee et al. 2018, eq. 4). Plain array code serves NumPy and CuPy alike; the fused
elementwise chains of ``kernels.fc`` fold this map into their passes.
"""

__all__ = ["affine"]


def affine(mat, W2, b2):
    """``W2 * mat + b2`` keeping ``mat``'s dtype (``None`` passes through)."""
    if mat is None:
        return None
    out = mat * mat.dtype.type(W2)
    if b2:
        out += mat.dtype.type(b2)
    return out
