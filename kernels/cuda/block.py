"""The fused full-covariance block on the GPU: a run of 3x3 stride-1 convolutions, each
followed by an activation, between two poolings, for many image pairs at once.

Mathematics: ``reference.conv_block_ref`` (the layer-by-layer statement this kernel is tested
against). A stride-1 convolution only mixes entries of a pair tensor ``K[h, h', w, w']`` with
the same spatial offset ``(dh, dw) = (h' - h, w' - w)``, and the activation is pointwise, so
all layers of a block run on one offset plane ``P[h, w] = K[h, h + dh, w, w + dw]`` kept in
shared memory (NNGP and NTK, double-buffered: ``4 H W`` values), one CUDA block per
(pair, offset). The per-position variances each activation needs are those of the images'
own covariances (offset (0, 0)); they are computed once per image (``block_variances``), not
once per pair.

Symmetry: for a pair of an image with itself, plane ``(-dh, -dw)`` is the transpose of plane
``(dh, dw)``; such launches (``self_pairs``) compute one plane of each mirror pair and write
both. For ``x2 = x1`` only pairs ``i < j`` are launched; ``K[j, i]`` is the spatial transpose
of ``K[i, j]`` and ``K[i, i]`` comes from the self launch (it equals ``cov1[i]``).
"""
import functools

import numba
import numpy as np

from .._jit import cuda_module, cuda_simulated
from .._xp import get_xp
from .duals import act_table, dual_dev
from .reference import block_variances, conv_block_ref

cuda = cuda_module()

__all__ = ["conv_block", "coef_table", "PADDINGS", "SHARED_BYTES"]

PADDINGS = {"SAME": 0, "VALID": 1, "CIRCULAR": 2}
SHARED_BYTES = 48 * 1024   # the default dynamic shared-memory limit of a CUDA block


def coef_table(coefs, dtype):
    """Rows ``(W2, b2, c_ntk, c_nngp, c0)`` -> ``(W2/9, b2, c_ntk/9, c_nngp/9, c0)``."""
    c = np.array(coefs, dtype=np.float64).reshape(-1, 5)
    c[:, [0, 2, 3]] /= 9.0
    return c.astype(dtype)


@cuda.jit(device=True)
def _offset(k, pad, Ho, Wo, H, W):
    """Offset ``(dh, dw)`` of plane number ``k`` and the number of the mirror plane."""
    if pad == 2:
        dh, dw = k // W, k % W
        return dh, dw, ((H - dh) % H) * W + (W - dw) % W
    nw = 2 * Wo - 1
    dh, dw = k // nw - (Ho - 1), k % nw - (Wo - 1)
    return dh, dw, (2 * Ho - 1) * nw - 1 - k


@cuda.jit(device=True)
def _box(sh, cur, plane, nr, nc, r, c, pad, want_ntk):
    """Sums of the 3x3 neighbourhood of local entry ``(r, c)``: ``(S_nngp, S_ntk)``."""
    sk = sh[cur] - sh[cur]
    st = sk
    for a in range(3):
        rr = r + a if pad == 1 else r + a - 1
        if pad == 2:
            rr = rr % nr
        if rr < 0 or rr >= nr:
            continue
        for b in range(3):
            cc = c + b if pad == 1 else c + b - 1
            if pad == 2:
                cc = cc % nc
            if cc < 0 or cc >= nc:
                continue
            sk += sh[cur + rr * nc + cc]
            if want_ntk:
                st += sh[cur + plane + rr * nc + cc]
    return sk, st


@cuda.jit(device=True)
def _pos(h0, r, dh, n, pad):
    """Absolute positions ``(h, h + dh)`` of local row ``r`` (modulo ``n`` for CIRCULAR)."""
    h = h0 + r
    hp = h + dh
    if pad == 2:
        hp = hp % n
    return h, hp


@cuda.jit(device=True)
def _layers(sh, plane, nr, nc, h0, w0, dh, dw, i, j, var1, var2, coefs, acts, pad, want_ntk,
            on_diagonal):
    """Run every layer of the block on the plane in shared memory; return the final buffer.

    ``on_diagonal``: plane (0, 0) of an image with itself, where ``k12`` is the variance: it is
    taken from ``var1`` itself so that ``k11 k22 - k12^2`` is exactly 0 there (otherwise
    rounding of order 1e-16 is amplified to 1e-8 by the square root of the arc-cosine step)."""
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    cur, nxt = 0, 2 * plane
    for l in range(coefs.shape[0]):
        nro, nco = (nr - 2, nc - 2) if pad == 1 else (nr, nc)
        H, W = var1.shape[2], var1.shape[3]
        kind, prm = acts[l, 0], (acts[l, 1], acts[l, 2], acts[l, 3], acts[l, 4])
        for e in range(tid, nro * nco, nt):
            r, c = e // nco, e % nco
            sk, st = _box(sh, cur, plane, nr, nc, r, c, pad, want_ntk)
            k12 = coefs[l, 0] * sk + coefs[l, 1]
            h, hp = _pos(h0, r, dh, H, pad)
            w, wp = _pos(w0, c, dw, W, pad)
            if on_diagonal:
                k12 = var1[l, i, h, w]
            nk, dot = dual_dev(kind, prm, var1[l, i, h, w], k12, var2[l, j, hp, wp])
            sh[nxt + e] = nk
            if want_ntk:
                sh[nxt + plane + e] = (coefs[l, 2] * st + coefs[l, 3] * sk + coefs[l, 4]) * dot
        cuda.syncthreads()
        cur, nxt = nxt, cur
        nr, nc = nro, nco
    return cur


@functools.lru_cache(maxsize=None)
def _block_kernel(dtype_name):
    """The fused kernel, compiled for one dtype (the shared array's type is static).

    Block ``(p, k)``: pair ``p`` reads ``src[si[p], sj[p]]`` (6-d pair tensors, any strides)
    and the variances ``var1[:, vi[p]]``, ``var2[:, vj[p]]``, works on offset plane ``k`` and
    writes ``dst[si[p], sj[p]]``; with ``self_pairs`` also the mirror plane, with
    ``mirror_pair`` also ``dst[sj[p], si[p]]`` (the spatial transpose, for x2 = x1).
    """
    dt = {"float32": numba.float32, "float64": numba.float64}[dtype_name]

    @cuda.jit
    def kernel(src_k, src_t, dst_k, dst_t, var1, var2, si, sj, vi, vj, coefs, acts, pad,
               want_ntk, self_pairs, mirror_pair):
        sh = cuda.shared.array(0, dtype=dt)
        p, k = cuda.blockIdx.x, cuda.blockIdx.y
        H, W, Ho, Wo = src_k.shape[2], src_k.shape[4], dst_k.shape[2], dst_k.shape[4]
        dh, dw, mirror = _offset(k, pad, Ho, Wo, H, W)
        if self_pairs and mirror < k:
            return
        a, b = si[p], sj[p]
        plane = H * W
        h0, w0 = (0, 0) if pad == 2 else (max(0, -dh), max(0, -dw))
        nr, nc = (H, W) if pad == 2 else (H - abs(dh), W - abs(dw))
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for e in range(tid, nr * nc, nt):
            h, hp = _pos(h0, e // nc, dh, H, pad)
            w, wp = _pos(w0, e % nc, dw, W, pad)
            sh[e] = src_k[a, b, h, hp, w, wp]
            if want_ntk:
                sh[plane + e] = src_t[a, b, h, hp, w, wp]
        cuda.syncthreads()
        cur = _layers(sh, plane, nr, nc, h0, w0, dh, dw, vi[p], vj[p], var1, var2,
                      coefs, acts, pad, want_ntk, self_pairs and dh == 0 and dw == 0)
        if pad == 1:
            nr, nc = nr - 2 * coefs.shape[0], nc - 2 * coefs.shape[0]
        for e in range(tid, nr * nc, nt):
            h, hp = _pos(h0, e // nc, dh, Ho, pad)
            w, wp = _pos(w0, e % nc, dw, Wo, pad)
            _store(dst_k, a, b, h, hp, w, wp, sh[cur + e], self_pairs, mirror_pair)
            if want_ntk:
                _store(dst_t, a, b, h, hp, w, wp, sh[cur + plane + e], self_pairs, mirror_pair)

    return kernel


@cuda.jit(device=True)
def _store(dst, a, b, h, hp, w, wp, val, self_pairs, mirror_pair):
    dst[a, b, h, hp, w, wp] = val
    if self_pairs:
        dst[a, b, hp, h, wp, w] = val
    if mirror_pair:
        dst[b, a, hp, h, wp, w] = val


def _launch(xp, src, dst, var, index, tables, pad, flags, threads):
    """One launch over the pairs of ``index = (si, sj, vi, vj)``; ``src``/``dst`` are
    ``(nngp, ntk or None)`` 6-d pair tensors; ``flags = (self_pairs, mirror_pair)``."""
    coefs, acts = tables
    n_pairs = int(index[0].shape[0])
    if n_pairs == 0:
        return
    H, W, Ho, Wo = src[0].shape[2], src[0].shape[4], dst[0].shape[2], dst[0].shape[4]
    want_ntk = src[1] is not None
    # unused arguments get a dummy, never an alias (aliased host arrays break the simulator)
    dummy = xp.zeros((1,) * 6, dtype=src[0].dtype)
    n_off = H * W if pad == 2 else (2 * Ho - 1) * (2 * Wo - 1)
    shared = 4 * H * W * src[0].dtype.itemsize
    kernel = _block_kernel(src[0].dtype.name)
    kernel[(n_pairs, n_off), threads, 0, shared](
        src[0], src[1] if want_ntk else dummy, dst[0], dst[1] if want_ntk else dummy,
        var[0], var[1], *index, coefs, acts, pad, want_ntk, *flags)


def _validate(nngp, coefs, acts, padding):
    if padding not in PADDINGS:
        raise ValueError(f"conv_block: `padding` must be one of {tuple(PADDINGS)}, "
                         f"got {padding!r}.")
    if nngp.ndim != 6 or nngp.dtype.name not in ("float32", "float64"):
        raise ValueError("conv_block: expected a float32/float64 full covariance "
                         f"(N1, N2, H, H, W, W), got shape {tuple(nngp.shape)} and dtype "
                         f"{nngp.dtype}.")
    if len(coefs) != len(acts) or len(coefs) == 0:
        raise ValueError(f"conv_block: need one activation per conv layer, got {len(coefs)} conv "
                         f"rows and {len(acts)} activation rows.")
    if padding == "VALID" and min(nngp.shape[2], nngp.shape[4]) <= 2 * len(coefs):
        raise ValueError(f"conv_block: {len(coefs)} VALID 3x3 layers need images larger than "
                         f"{2 * len(coefs)} pixels, got {nngp.shape[2]}x{nngp.shape[4]}.")


def conv_block(nngp, ntk, cov1, cov2, coefs, acts, padding, threads=None):
    """Fused ``reference.conv_block_ref`` on device arrays; same arguments and results.

    ``coefs``: rows ``(W2, b2, c_ntk, c_nngp, c0)`` (``reference.layer_coefficients``);
    ``acts``: rows ``(kind, a, b, c)``; ``cov2=None`` means x2 is x1. Planes too large for
    shared memory (``4 H W`` values over 48 KB) run the array reference instead. The inputs
    are read in place (no copies) and never written.
    """
    threads = threads or (4 if cuda_simulated() else 128)   # simulator: a Python thread each
    _validate(nngp, coefs, acts, padding)
    xp = get_xp(nngp)
    N1, N2, H, _, W, _ = nngp.shape
    if 4 * H * W * nngp.dtype.itemsize > SHARED_BYTES:
        return conv_block_ref(xp, nngp, ntk, cov1, cov2, coefs, acts, padding)
    L, dt, pad = len(coefs), nngp.dtype, PADDINGS[padding]
    Ho, Wo = (H - 2 * L, W - 2 * L) if padding == "VALID" else (H, W)
    tables = (xp.asarray(coef_table(coefs, dt)), xp.asarray(act_table(acts, dt)))
    var1 = block_variances(xp, cov1, coefs, acts, padding)
    var2 = var1 if cov2 is None else block_variances(xp, cov2, coefs, acts, padding)
    new = lambda a, b, like: None if like is None else xp.empty((a, b, Ho, Ho, Wo, Wo), dt)
    out = (new(N1, N2, nngp), new(N1, N2, ntk))
    if cov2 is None:
        return _square(xp, (nngp, ntk), out, var1, tables, pad, threads)
    covs = []
    for cov, var in ((cov1, var1), (cov2, var2)):
        ar = xp.arange(cov.shape[0], dtype=np.int64)
        c_out = new(cov.shape[0], 1, cov)
        _launch(xp, (cov[:, None], None), (c_out, None), (var, var),
                (ar, xp.zeros_like(ar), ar, ar), tables, pad, (True, False), threads)
        covs.append(c_out[:, 0])
    pairs = xp.arange(N1 * N2, dtype=np.int64)
    i, j = pairs // N2, pairs % N2
    _launch(xp, (nngp, ntk), out, (var1, var2), (i, j, i, j), tables, pad, (False, False),
            threads)
    return out[0], out[1], covs[0], covs[1]


def _square(xp, src, out, var1, tables, pad, threads):
    """x2 = x1: self pairs ``(i, i)`` once (mirror planes shared; they also give cov1), then
    pairs ``i < j``, each written at ``[i, j]`` and, transposed, at ``[j, i]``."""
    N = src[0].shape[0]
    ar = xp.arange(N, dtype=np.int64)
    _launch(xp, src, out, (var1, var1), (ar, ar, ar, ar), tables, pad, (True, False), threads)
    iu, ju = (xp.asarray(a) for a in np.triu_indices(N, 1))
    _launch(xp, src, out, (var1, var1), (iu, ju, iu, ju), tables, pad, (False, True), threads)
    return out[0], out[1], out[0][ar, ar], None
