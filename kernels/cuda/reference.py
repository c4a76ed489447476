"""Array (NumPy/CuPy) references for the CUDA kernels of this package.

Layout: a pair tensor ``mat`` has ``n_batch`` leading batch axes, then ``(H, H', W, W')``
(the full spatial covariance of NT, canonical order). Every function takes the array
namespace ``xp`` first so that one body serves the CPU and the GPU.

Convolution of a full covariance (a stride-1 ``k x k`` filter with i.i.d. weights;
Novak et al. 2019, "Bayesian deep CNNs with many channels are GPs", eq. 7; NT's
``_conv_kernel_full_spatial_shared``), before the affine map ``W_std^2 (.) + b_std^2``:

    A(K)[h, h', w, w'] = 1/(kh kw) sum_{a, b} K[h + a, h' + a, w + b, w' + b]

with ``a`` over the filter rows (centred for SAME and CIRCULAR, ``0..kh-1`` for VALID),
zero outside the image for SAME, indices modulo the size for CIRCULAR.
"""
from ..activations.erf import erf_constants, erf_reference
from ..activations.relu import abrelu_constants, abrelu_reference

__all__ = ["box_full", "avg_pool_full", "dual",
           "block_variances", "conv_block_ref", "ACT_NONE", "ACT_ABRELU", "ACT_ERF",
           "layer_coefficients"]

ACT_NONE, ACT_ABRELU, ACT_ERF = 0, 1, 2


def _shift_pair(xp, mat, axis, a, padding, size_out):
    """``mat[..., h + a, h' + a, ...]`` along the axis pair (axis, axis + 1)."""
    n = mat.shape[axis]
    if padding == "CIRCULAR":
        return xp.roll(mat, (-a, -a), axis=(axis, axis + 1))
    if padding == "VALID":
        sl = [slice(None)] * mat.ndim
        sl[axis] = sl[axis + 1] = slice(a, a + size_out)
        return mat[tuple(sl)]
    pad = [(0, 0)] * mat.ndim
    pad[axis] = pad[axis + 1] = (1, 1)
    padded = xp.pad(mat, pad)
    sl = [slice(None)] * mat.ndim
    sl[axis] = sl[axis + 1] = slice(1 + a, 1 + a + n)
    return padded[tuple(sl)]


def box_full(xp, mat, n_batch, padding, filter_shape=(3, 3)):
    """``A(K)`` above, for a 2-d full covariance and a ``kh x kw`` filter (odd unless VALID)."""
    out = mat
    for d, k in enumerate(filter_shape):
        axis = n_batch + 2 * d
        n = out.shape[axis]
        size_out = n - k + 1 if padding == "VALID" else n
        offsets = range(k) if padding == "VALID" else range(-(k // 2), k // 2 + 1)
        acc = None
        for a in offsets:
            t = _shift_pair(xp, out, axis, a, padding, size_out)
            acc = t if acc is None else acc + t
        out = acc / out.dtype.type(k)
    return out


def avg_pool_full(xp, mat, n_batch, window, strides=None):
    """VALID average pooling of a full covariance (NT's ``AvgPool``, ``normalize_edges`` moot;
    ``strides=None`` means stride 1, as in NT):

        P(K)[p, p', q, q'] = 1/(wh ww)^2 sum K[s p + a, s p' + a', t q + b, t q' + b']
    """
    strides = (1,) * len(window) if strides is None else tuple(strides)   # NT: None = 1
    out = mat
    for d, (k, s) in enumerate(zip(window, strides)):
        for axis in (n_batch + 2 * d, n_batch + 2 * d + 1):
            n_out = (out.shape[axis] - k) // s + 1
            acc = None
            for a in range(k):
                sl = [slice(None)] * out.ndim
                sl[axis] = slice(a, a + s * (n_out - 1) + 1, s)
                t = out[tuple(sl)]
                acc = t if acc is None else acc + t
            out = acc / out.dtype.type(k)
    return out


def dual(xp, act, k11, k12, k22):
    """``(E[phi phi], E[phi' phi'])`` for a row ``act = (kind, a, b, c)`` of the block's
    activation table: the array forms of ``kernels.activations`` (ABReLU(a, b), Erf(a, b, c);
    the identity for ``ACT_NONE``). ``xp`` is that of the arrays."""
    kind = int(act[0])
    if kind == ACT_ABRELU:
        return abrelu_reference(k11, k12, k22, True, abrelu_constants(act[1], act[2]))
    if kind == ACT_ERF:
        return erf_reference(k11, k12, k22, True, erf_constants(act[1], act[2], act[3]))
    return k12, xp.ones_like(k12)


def layer_coefficients(W_std, b_std=None, parameterization="ntk", fan_in=None, s0=1.0):
    """Row ``(W2, b2, c_ntk, c_nngp, c0)`` of a conv layer in the block:

        nngp' = W2 A(K) + b2,   ntk' = c_ntk A(Theta) + c_nngp A(K) + c0

    'ntk': ``c_ntk = W2, c_nngp = W2, c0 = b2``; 'standard' (Sohl-Dickstein et al. 2020):
    ``c_ntk = W2, c_nngp = fan_in / s0, c0 = 1 if b_std is given else 0``.
    """
    W2 = float(W_std) ** 2
    b2 = 0.0 if b_std is None else float(b_std) ** 2
    if parameterization == "ntk":
        return (W2, b2, W2, W2, b2)
    if fan_in is None:
        raise ValueError("layer_coefficients: the 'standard' parameterization needs `fan_in`.")
    return (W2, b2, W2, float(fan_in) / float(s0), 0.0 if b_std is None else 1.0)


def _diag2(xp, cov):
    """``cov[n, h, h, w, w]`` -> ``(N, H, W)``."""
    return xp.einsum("nhhww->nhw", cov)


def block_variances(xp, cov, coefs, acts, padding):
    """Pre-activation variances of every layer of a block, per image: ``(L, N, H, W)``.

    A stride-1 convolution keeps the spatial offset, so the variances (offset (0, 0) of an
    image's own covariance) evolve on their own: ``v <- W2 A(v) + b2`` (recorded), then
    ``v <- dual(v, v, v)``. For VALID the layer-``l`` values fill ``[:H_l, :W_l]``.
    """
    v = _diag2(xp, cov)
    n, h, w = v.shape
    out = xp.zeros((len(coefs), n, h, w), dtype=cov.dtype)
    for l, (c, act) in enumerate(zip(coefs, acts)):
        v = box_diag(xp, v, padding)
        v = v * v.dtype.type(c[0]) + v.dtype.type(c[1])
        out[l, :, :v.shape[1], :v.shape[2]] = v
        v = dual(xp, act, v, v, v)[0]
    return out


def box_diag(xp, v, padding):
    """The 3x3 box filter on the offset-(0, 0) plane ``(N, H, W)``."""
    n, h, w = v.shape
    if padding == "CIRCULAR":
        acc = sum(xp.roll(v, (-a, -b), axis=(1, 2)) for a in (-1, 0, 1) for b in (-1, 0, 1))
        return acc / v.dtype.type(9)
    if padding == "VALID":
        acc = sum(v[:, a:a + h - 2, b:b + w - 2] for a in range(3) for b in range(3))
        return acc / v.dtype.type(9)
    p = xp.pad(v, ((0, 0), (1, 1), (1, 1)))
    acc = sum(p[:, 1 + a:1 + a + h, 1 + b:1 + b + w] for a in (-1, 0, 1) for b in (-1, 0, 1))
    return acc / v.dtype.type(9)


def _spatial_var(xp, cov, side):
    v = _diag2(xp, cov)
    return v[:, None, :, None, :, None] if side == 1 else v[None, :, None, :, None, :]


def conv_block_ref(xp, nngp, ntk, cov1, cov2, coefs, acts, padding):
    """A run of (3x3 stride-1 conv, activation) layers on full covariances, layer by layer.

    ``nngp``/``ntk``: ``(N1, N2, H, H, W, W)`` (``ntk`` may be None), ``cov1``/``cov2``:
    ``(N, H, H, W, W)`` (``cov2`` None when x2 is x1). Per layer: the conv and affine map of
    ``layer_coefficients``, then ``K <- E[phi phi]``, ``Theta <- Theta E[phi' phi']`` with the
    variances of each side. Returns ``(nngp, ntk, cov1, cov2)``.
    """
    for c, act in zip(coefs, acts):
        dt = nngp.dtype.type
        covs = [cov1, cov2]
        for s, cv in enumerate(covs):
            if cv is not None:
                covs[s] = box_full(xp, cv, 1, padding) * dt(c[0]) + dt(c[1])
        cov1, cov2 = covs
        a_k = box_full(xp, nngp, 2, padding)
        if ntk is not None:
            ntk = box_full(xp, ntk, 2, padding) * dt(c[2]) + a_k * dt(c[3]) + dt(c[4])
        nngp = a_k * dt(c[0]) + dt(c[1])
        c2 = cov1 if cov2 is None else cov2
        nngp, dot = dual(xp, act, _spatial_var(xp, cov1, 1), nngp, _spatial_var(xp, c2, 2))
        ntk = None if ntk is None else ntk * dot
        covs = [cov1, cov2]
        for s, cv in enumerate(covs):
            if cv is not None:
                v = _diag2(xp, cv)
                covs[s] = dual(xp, act, v[:, :, None, :, None], cv, v[:, None, :, None, :])[0]
        cov1, cov2 = covs
    return nngp, ntk, cov1, cov2
