"""Average pooling of full covariances on the GPU (VALID padding, any window and strides).

Formula: ``reference.avg_pool_full``,

    P(K)[b, p, p', q, q'] = 1/(wh ww)^2 sum_{a, a', c, c'}
                            K[b, s p + a, s p' + a', t q + c, t q' + c']

one thread per output entry (a grid-stride loop over the flattened output).
"""
import numpy as np

from .._jit import cuda_module, cuda_simulated
from .._xp import get_xp

cuda = cuda_module()

__all__ = ["avg_pool_full_cuda"]


@cuda.jit
def _pool_kernel(src, dst, wh, ww, sh, sw, scale):
    B, Po, _, Qo, _ = dst.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, B * Po * Po * Qo * Qo, stride):
        q2 = e % Qo
        q1 = (e // Qo) % Qo
        p2 = (e // (Qo * Qo)) % Po
        p1 = (e // (Qo * Qo * Po)) % Po
        b = e // (Qo * Qo * Po * Po)
        acc = scale - scale
        for a1 in range(wh):
            for a2 in range(wh):
                for c1 in range(ww):
                    for c2 in range(ww):
                        acc += src[b, sh * p1 + a1, sh * p2 + a2, sw * q1 + c1, sw * q2 + c2]
        dst[b, p1, p2, q1, q2] = acc * scale


def avg_pool_full_cuda(mat, n_batch, window, strides=None, threads=None):
    """VALID ``AvgPool`` of a full covariance with ``n_batch`` leading batch axes."""
    threads = threads or (4 if cuda_simulated() else 256)   # simulator: a Python thread each
    xp = get_xp(mat)
    window = tuple(int(w) for w in window)
    strides = (1, 1) if strides is None else tuple(int(s) for s in strides)   # NT: None = 1
    if mat.ndim != n_batch + 4 or len(window) != 2 or len(strides) != 2:
        raise ValueError(f"avg_pool_full_cuda: expected a 2-d full covariance with {n_batch} batch "
                         f"axes and 2-d window/strides; got shape {tuple(mat.shape)}, window "
                         f"{window}, strides {strides}.")
    H, W = mat.shape[n_batch], mat.shape[n_batch + 2]
    Po, Qo = (H - window[0]) // strides[0] + 1, (W - window[1]) // strides[1] + 1
    if Po < 1 or Qo < 1:
        raise ValueError(f"avg_pool_full_cuda: window {window} is larger than the {H}x{W} image.")
    batch = mat.shape[:n_batch]
    src = xp.ascontiguousarray(mat).reshape((-1,) + mat.shape[n_batch:])
    dst = xp.empty((src.shape[0], Po, Po, Qo, Qo), dtype=mat.dtype)
    scale = mat.dtype.type(1.0 / (window[0] * window[1]) ** 2)
    blocks = max(1, min(65535, (dst.size + threads - 1) // threads))
    _pool_kernel[blocks, threads](src, dst, window[0], window[1], strides[0], strides[1], scale)
    return dst.reshape(batch + dst.shape[1:])
