"""The fused spatial engine: a run of conv / ABReLU / affine / avg-pool layers, read out or not
by GlobalAvgPool or Flatten, computed one image pair and one offset plane at a time.

Why: on full spatial covariances the layer-by-layer path makes one pass over an
(N1, N2, H, H, W, W) tensor per layer (10^6 entries per pair for 32x32 images). A stride-1
convolution and a pointwise dual map each offset plane (``planes``) to itself, so here a plane
goes through every layer of a block (between two poolings) while it sits in L1, and is then
pooled into the next block's compact layout, summed (GlobalAvgPool) or stored (``emit``).
The input covariance is formed per plane from the images themselves, so no (HW)^2-per-pair
tensor is built unless the caller asked for one as output.

Order of work (``spatial_chain``):

1. *Self runs*, one per image (``prange`` over workspace slots): the pair (i, i). Plane (0, 0)
   of each block is done first and records, before every activation, the image's per-position
   variances (what the activation of every pair needs: computed once per image, not per pair).
   Plane (-d) of a self pair equals plane d entry for entry (local indices coincide), so only
   half the planes are computed and each is used twice. The self runs give cov1/cov2 (and the
   diagonal of a square kernel).
2. *Pair runs*: every (i, j) of x1 x x2, or i < j when x2 is x1 (the result is stored for (j, i)
   too, transposed). Pairs are dealt to workspace slots round-robin; each slot owns its scratch
   planes and compact buffers, so memory is bounded by the thread count, not by N.

Tables: ``program.Program``. Scratch per slot: 4 flat plane buffers (K and Theta,
double-buffered) and 2 accumulators of (Hmax + 2P + 1)(Wmax + 2P) entries, and 2 x 2 compact
buffers (current and next block, K and Theta) of ``Program.comp_len`` entries.
"""
import numba
import numpy as np

from .._jit import cpu_jit, cpu_pjit
from .emit import (finish_strided_conv, normalize_compact, pool_scatter_plane, skew_to_compact,
                   store_compact_plane, store_diag_plane, unskew_from_compact)
from .planes import (abrelu_group, affine_plane, conv_group, interior_sum, load_compact_plane,
                     load_images_plane, record_variances, tall_rows, zero_ring_group)
from .program import OP_ABRELU, OP_CONV, TR_FLATTEN, TR_GAP, TR_POOL, TR_SCONV

__all__ = ["run_pairs"]


@cpu_jit
def _load(blk, a, b, oi, oj, is_self, dw, dhs, phs, n, pw, src, blocks, coff, comp, cur, P,
          inv_c, K, T, has_ntk):
    """The block's input planes of one group: block 0 from the images (Theta is zero and not
    stored: ``t_zero``), otherwise from the compact layout (a pair-tensor source is skewed
    into it first, ``_skew_source``)."""
    S = pw + 2 * P
    r0 = 0
    Rh, Rw, cb = blocks[blk, 4], blocks[blk, 5], blocks[blk, 11]
    xt = src[0]
    for g in range(n):
        dh, ph = dhs[g], phs[g]
        if blk == 0 and xt.shape[0] > 0:
            load_images_plane(xt[a], xt[b], dh, dw, ph, pw, P, inv_c, K[r0 * S:])
        else:
            base = coff[cb + (dh + Rh) * (2 * Rw + 1) + dw + Rw]
            load_compact_plane(comp[cur, 0], base, ph, pw, P, K[r0 * S:])
            if has_ntk:
                load_compact_plane(comp[cur, 1], base, ph, pw, P, T[r0 * S:])
        r0 += ph + P


@cpu_jit
def _ops(o0, o1, a, b, dw, dhs, phs, n, pw, is_self, ops, fp, var, bufs, acc, P, has_ntk,
         t_zero):
    """All per-plane operations of a block on one group; returns (buffer index, planes left,
    width, t_zero)."""
    kb = 0
    for o in range(o0, o1):
        kind = ops[o, 0]
        if kind == OP_CONV:
            n, pw = conv_group(bufs[kb], bufs[2 + kb], bufs[1 - kb], bufs[3 - kb], acc, dhs, phs,
                               n, pw, ops[o, 1], ops[o, 2], ops[o, 3], ops[o, 4], ops[o, 5] == 1,
                               P, fp[o, 0], fp[o, 1], has_ntk, t_zero)
            kb = 1 - kb
            t_zero = False
            if n <= 0 or pw <= 0:
                return kb, 0, pw, t_zero
        elif kind == OP_ABRELU:
            if is_self and dw == 0 and dhs[0] == 0:
                record_variances(bufs[kb], phs[0], pw, P, var[a], ops[o, 8])
            abrelu_group(bufs[kb], bufs[2 + kb], var[a], var[b], ops[o, 8], ops[o, 7], dhs, phs,
                         n, dw, pw, P, fp[o, 0], fp[o, 1], has_ntk, t_zero, acc[0])
        else:
            tall = tall_rows(phs, n, P)
            affine_plane(bufs[kb], bufs[2 + kb], tall, pw, P, fp[o, 0], fp[o, 1],
                         has_ntk and not t_zero)
            if has_ntk and t_zero:
                bufs[2 + kb][:] = bufs[kb]
            t_zero = False
    return kb, n, pw, t_zero


@cpu_jit
def _coff_view(coff, blocks, blk):
    Rh, Rw, cb = blocks[blk, 4], blocks[blk, 5], blocks[blk, 11]
    return coff[cb:cb + (2 * Rh + 1) * (2 * Rw + 1)].reshape((2 * Rh + 1, 2 * Rw + 1))


@cpu_jit
def _emit_planes(K, T, P, dw, dhs, phs, n, pw, is_self, sym, tr, prow, comp, nxt, cn, ecoff,
                 oi, oj, out_d, has_ntk, out_f):
    """Pool-scatter or store each plane of a group (its view starts at its top ring row)."""
    S = pw + 2 * P
    r0 = 0
    for g in range(n):
        dh, ph = dhs[g], phs[g]
        Kv, Tv = K[r0 * S:], T[r0 * S:]
        twice = is_self and (dh != 0 or dw != 0)
        if tr == TR_POOL or tr == TR_SCONV:
            _scatter(Kv, Tv, P, dh, dw, ph, pw, twice, prow, comp, nxt, cn, has_ntk)
        elif out_f.shape[1] > 0:
            _store_compact(Kv, Tv, P, dh, dw, ph, pw, twice, comp, nxt, ecoff, has_ntk)
        else:
            _store_diag(Kv, Tv, P, ph, pw, sym, oi, oj, out_d, has_ntk)
        r0 += ph + P


@cpu_jit
def _group_sum(K, P, dw, dhs, phs, n, pw, is_self):
    """Sum of a group's planes; a self pair counts each plane twice except (0, 0)."""
    zero_ring_group(K, phs, n, pw, P)
    total = interior_sum(K, tall_rows(phs, n, P), pw, P)
    if not is_self:
        return total
    if dw == 0 and dhs[0] == 0:
        return 2.0 * total - interior_sum(K, phs[0], pw, P)
    return 2.0 * total


@cpu_jit
def _scatter(K, T, P, dh, dw, ph, pw, twice, prow, comp, nxt, cn, has_ntk):
    pool_scatter_plane(K, P, dh, dw, ph, pw, prow, comp[nxt, 0], cn)
    if has_ntk:
        pool_scatter_plane(T, P, dh, dw, ph, pw, prow, comp[nxt, 1], cn)
    if twice:
        pool_scatter_plane(K, P, -dh, -dw, ph, pw, prow, comp[nxt, 0], cn)
        if has_ntk:
            pool_scatter_plane(T, P, -dh, -dw, ph, pw, prow, comp[nxt, 1], cn)


@cpu_jit
def _store_compact(K, T, P, dh, dw, ph, pw, twice, comp, nxt, ecoff, has_ntk):
    """A full spatial output: planes go to the end layout (unskewed once per pair, below)."""
    Rh, Rw = (ecoff.shape[0] - 1) // 2, (ecoff.shape[1] - 1) // 2
    for q in range(2 if has_ntk else 1):
        src = K if q == 0 else T
        store_compact_plane(src, P, dh, dw, ph, pw, comp[nxt, q], ecoff, Rh, Rw)
        if twice:
            store_compact_plane(src, P, -dh, -dw, ph, pw, comp[nxt, q], ecoff, Rh, Rw)


@cpu_jit
def _store_diag(K, T, P, ph, pw, sym, oi, oj, out_d, has_ntk):
    """A spatial-diagonal output: plane (0, 0) is the whole of it."""
    for q in range(2 if has_ntk else 1):
        src = K if q == 0 else T
        store_diag_plane(out_d[q, oi, oj], src, ph, pw, P)
        if sym:
            store_diag_plane(out_d[q, oj, oi], src, ph, pw, P)


@cpu_jit
def _skew_source(src, a, oi, oj, is_self, blocks, coff, comp, cur, has_ntk):
    """A pair-tensor source (Neural Tangents' layout) into block 0's compact layout."""
    c0 = _coff_view(coff, blocks, 0)
    Rh, Rw = blocks[0, 4], blocks[0, 5]
    if is_self:
        skew_to_compact(src[3][a], comp[cur, 0], c0, Rh, Rw)
        return
    skew_to_compact(src[1][oi, oj], comp[cur, 0], c0, Rh, Rw)
    if has_ntk:
        skew_to_compact(src[2][oi, oj], comp[cur, 1], c0, Rh, Rw)


@cpu_jit
def _run_pair(a, b, oi, oj, is_self, sym, src, var, ops, fp, blocks, planes, groups, coff, pool,
              inv_h, inv_w, tparams, ecoff, P, inv_c, has_ntk, bufs, acc, comp, dhs, phs, out_s,
              out_f, out_d):
    """One image pair (a, b) through the whole program, results at [oi, oj] (and [oj, oi])."""
    cur = 0
    if src[0].shape[0] == 0:
        _skew_source(src, a, oi, oj, is_self, blocks, coff, comp, cur, has_ntk)
    for blk in range(blocks.shape[0]):
        H, W, tr = blocks[blk, 2], blocks[blk, 3], blocks[blk, 10]
        g0 = blocks[blk, 8] if is_self else blocks[blk, 6]
        gn = blocks[blk, 9] if is_self else blocks[blk, 7]
        nxt = 1 - cur
        cn = _coff_view(coff, blocks, min(blk + 1, blocks.shape[0] - 1))
        if tr == TR_POOL or tr == TR_SCONV:
            size = blocks[blk + 1, 12]
            comp[nxt, 0, :size] = 0
            if has_ntk:
                comp[nxt, 1, :size] = 0
        acc_k, acc_t = 0.0, 0.0
        for gi in range(g0, g0 + gn):
            dw, p0, n = groups[gi, 0], groups[gi, 1], groups[gi, 2]
            for g in range(n):
                dhs[g] = planes[p0 + g, 0]
                phs[g] = H - abs(dhs[g])
            pw = W - abs(dw)
            _load(blk, a, b, oi, oj, is_self, dw, dhs, phs, n, pw, src, blocks, coff, comp, cur,
                  P, inv_c, bufs[0], bufs[2], has_ntk)
            kb, n, pw, t_zero = _ops(blocks[blk, 0], blocks[blk, 1], a, b, dw, dhs, phs, n, pw,
                                     is_self, ops, fp, var, bufs, acc, P, has_ntk,
                                     blk == 0 and src[0].shape[0] > 0)
            if n <= 0 or pw <= 0:
                continue
            K, T = bufs[kb], bufs[2 + kb]
            if has_ntk and t_zero:
                T[:] = 0
            if tr == TR_GAP or tr == TR_FLATTEN:
                acc_k += _group_sum(K, P, dw, dhs, phs, n, pw, is_self)
                if has_ntk:
                    acc_t += _group_sum(T, P, dw, dhs, phs, n, pw, is_self)
            else:
                _emit_planes(K, T, P, dw, dhs, phs, n, pw, is_self, sym, tr, pool[blk], comp, nxt,
                             cn, ecoff, oi, oj, out_d, has_ntk, out_f)
        He, We = blocks[blk, 13], blocks[blk, 14]
        if tr == TR_POOL:
            Hn, Wn, Rn_h, Rn_w = pool[blk, 6], pool[blk, 7], pool[blk, 8], pool[blk, 9]
            normalize_compact(comp[nxt, 0], cn, Hn, Wn, Rn_h, Rn_w, inv_h[blk], inv_w[blk])
            if has_ntk:
                normalize_compact(comp[nxt, 1], cn, Hn, Wn, Rn_h, Rn_w, inv_h[blk], inv_w[blk])
            cur = nxt
        elif tr == TR_SCONV:
            finish_strided_conv(comp[nxt, 0], comp[nxt, 1], blocks[blk + 1, 12], tparams[blk, 0],
                                tparams[blk, 1], has_ntk)
            cur = nxt
        elif tr == TR_GAP or tr == TR_FLATTEN:
            m = He * He * We * We if tr == TR_GAP else He * We
            _put_scalar(out_s, oi, oj, sym, acc_k / m, acc_t / m, has_ntk)
        elif out_f.shape[1] > 0:
            for q in range(2 if has_ntk else 1):
                unskew_from_compact(comp[nxt, q], ecoff, out_f[q, oi, oj], out_f[q, oj, oi], sym)


@cpu_jit
def _put_scalar(out_s, oi, oj, sym, k, t, has_ntk):
    out_s[0, oi, oj] = k
    if sym:
        out_s[0, oj, oi] = k
    if has_ntk:
        out_s[1, oi, oj] = t
        if sym:
            out_s[1, oj, oi] = t


@cpu_pjit
def run_pairs(pairs, is_self, sym, xt, sk, st, sc, var, ops, fp, blocks, planes, groups, coff,
              pool, inv_h, inv_w, tparams, ecoff, P, inv_c, has_ntk, ws_planes, ws_acc, ws_comp,
              ws_idx, out_s, out_f, out_d):
    """Pairs ``(a, b, oi, oj)`` dealt round-robin to the workspace slots (one per thread).

    Source: images ``xt`` (N, C, H, W) when it has rows; otherwise pair tensors ``sk`` (NNGP)
    and ``st`` (NTK), (N1, N2, H, H, W, W), and per-image covariances ``sc`` for self runs."""
    src = (xt, sk, st, sc)
    n_slots = ws_planes.shape[0]
    n = pairs.shape[0]
    for s in numba.prange(n_slots):
        slot = np.int64(s)
        for p in range(slot, n, n_slots):
            _run_pair(pairs[p, 0], pairs[p, 1], pairs[p, 2], pairs[p, 3], is_self, sym, src, var,
                      ops, fp, blocks, planes, groups, coff, pool, inv_h, inv_w, tparams, ecoff,
                      P, inv_c, has_ntk, ws_planes[slot], ws_acc[slot], ws_comp[slot], ws_idx[slot, 0],
                      ws_idx[slot, 1], out_s, out_f, out_d)
