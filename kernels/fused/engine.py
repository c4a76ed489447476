"""The fused spatial engine: a run of conv / ABReLU / affine / avg-pool layers and residual
blocks, read out or not by GlobalAvgPool or Flatten, computed one image pair and one offset
plane at a time.

Why: on full spatial covariances the layer-by-layer path makes one pass over an
(N1, N2, H, H, W, W) tensor per layer (10^6 entries per pair for 32x32 images). A stride-1
convolution and a pointwise dual map each offset plane (``planes``) to itself, so here a plane
goes through every layer of a block (between two poolings) while it sits in L1, and is then
pooled into a register of the next block (a compact layout), summed (GlobalAvgPool) or stored
(``emit``). Residual branches are instructions on the same planes (``graph``, ``slots``): a
copy of the planes per open branch, and one register per value crossing a block boundary, so
a whole WideResNet runs with one pair's working set.
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

Tables: ``program.Program``. Scratch per thread: 4 flat plane buffers (K and Theta,
double-buffered) and 2 accumulators of (Hmax + 2P + 1)(Wmax + 2P) entries, ``n_slots`` x 2
plane slots, and 2 x ``n_regs`` x 2 compact buffers (the registers of the current and the next
block, K and Theta) of ``Program.comp_len`` entries.
"""
import numba
import numpy as np

from .._jit import cpu_jit, cpu_pjit
from .emit import (finish_strided_conv, normalize_compact, skew_to_compact, store_compact_plane,
                   store_diag_plane, unskew_from_compact)
from .planes import (abrelu_group, affine_plane, conv_group, interior_sum, load_compact_plane,
                     load_images_plane, record_variances, tall_rows, zero_ring_group)
from .program import (OP_ABRELU, OP_AFFINE, OP_COMBINE, OP_CONV, OP_LOAD, OP_RESTORE, OP_SAVE,
                      TR_FLATTEN, TR_GAP, TR_NONE)
from .slots import combine_slot, restore_slot, save_slot, scatter_group

__all__ = ["run_pairs"]


@cpu_jit
def _load(blk, reg, a, b, dw, dhs, phs, n, pw, src, blocks, coff, comp, cur, P, inv_c, K, T,
          has_ntk):
    """Register ``reg`` of block ``blk`` into the working planes of one group: block 0's
    register 0 from the images (Theta is zero and not stored: returns True, ``t_zero``),
    otherwise from the compact layout (a pair-tensor source is skewed into it first,
    ``_skew_source``)."""
    S = pw + 2 * P
    r0 = 0
    Rh, Rw, cb = blocks[blk, 4], blocks[blk, 5], blocks[blk, 11]
    xt = src[0]
    images = blk == 0 and xt.shape[0] > 0
    for g in range(n):
        dh, ph = dhs[g], phs[g]
        if images:
            load_images_plane(xt[a], xt[b], dh, dw, ph, pw, P, inv_c, K[r0 * S:])
        else:
            base = coff[cb + (dh + Rh) * (2 * Rw + 1) + dw + Rw]
            load_compact_plane(comp[cur, reg, 0], base, ph, pw, P, K[r0 * S:])
            if has_ntk:
                load_compact_plane(comp[cur, reg, 1], base, ph, pw, P, T[r0 * S:])
        r0 += ph + P
    return images


@cpu_jit(inline="always")
def _plane_op(o, kind, a, b, dw, dhs, phs, n, pw, is_self, ops, fp, var, bufs, acc, kb, P,
              has_ntk, t_zero):
    """One per-plane operation (conv, ABReLU, affine): returns (buffer index, planes, width,
    t_zero)."""
    if kind == OP_CONV:
        n, pw = conv_group(bufs[kb], bufs[2 + kb], bufs[1 - kb], bufs[3 - kb], acc, dhs, phs,
                           n, pw, ops[o, 1], ops[o, 2], ops[o, 3], ops[o, 4], ops[o, 5] == 1,
                           P, fp[o, 0], fp[o, 1], has_ntk, t_zero)
        return 1 - kb, n, pw, False
    if kind == OP_ABRELU:
        if is_self and dw == 0 and dhs[0] == 0:
            record_variances(bufs[kb], phs[0], pw, P, var[a], ops[o, 8])
        abrelu_group(bufs[kb], bufs[2 + kb], var[a], var[b], ops[o, 8], ops[o, 7], dhs, phs,
                     n, dw, pw, P, fp[o, 0], fp[o, 1], has_ntk, t_zero, acc[0])
        return kb, n, pw, t_zero
    tall = tall_rows(phs, n, P)
    affine_plane(bufs[kb], bufs[2 + kb], tall, pw, P, fp[o, 0], fp[o, 1],
                 has_ntk and not t_zero)
    if has_ntk and t_zero:
        bufs[2 + kb][:] = bufs[kb]
    return kb, n, pw, False


@cpu_jit
def _instrs(blk, a, b, is_self, dw, dhs, phs, n, pw, src, blocks, coff, comp, cur, P, inv_c,
            ops, fp, var, bufs, acc, slots, pool, treg, cn, has_ntk):
    """A block's instruction list on one group of planes (see ``graph``): returns (buffer
    index, planes left, width, t_zero)."""
    kb, t_zero, n0, pw0 = 0, False, n, pw
    for o in range(blocks[blk, 0], blocks[blk, 1]):
        kind, arg = ops[o, 0], ops[o, 9]
        if kind == OP_LOAD:
            kb, n, pw = 0, n0, pw0
            t_zero = _load(blk, arg, a, b, dw, dhs, phs, n, pw, src, blocks, coff, comp, cur, P,
                           inv_c, bufs[0], bufs[2], has_ntk)
            continue
        if kind <= OP_AFFINE:
            kb, n, pw, t_zero = _plane_op(o, kind, a, b, dw, dhs, phs, n, pw, is_self, ops, fp,
                                          var, bufs, acc, kb, P, has_ntk, t_zero)
            if n <= 0 or pw <= 0:
                return kb, 0, pw, t_zero
            continue
        if has_ntk and t_zero:
            bufs[2 + kb][:] = 0
            t_zero = False
        K, T = bufs[kb], bufs[2 + kb]
        if kind == OP_SAVE:
            save_slot(K, T, slots[arg], phs, n, pw, P, has_ntk)
        elif kind == OP_RESTORE:
            restore_slot(K, T, slots[arg], phs, n, pw, P, has_ntk)
        elif kind == OP_COMBINE:
            combine_slot(K, T, slots[arg], phs, n, pw, P, ops[o, 1], fp[o, 0], fp[o, 1],
                         has_ntk)
        else:
            scatter_group(K, T, P, dw, dhs, phs, n, pw, is_self, pool[arg],
                          comp[1 - cur, treg[arg]], cn, has_ntk)
    return kb, n, pw, t_zero


@cpu_jit
def _coff_view(coff, blocks, blk):
    Rh, Rw, cb = blocks[blk, 4], blocks[blk, 5], blocks[blk, 11]
    return coff[cb:cb + (2 * Rh + 1) * (2 * Rw + 1)].reshape((2 * Rh + 1, 2 * Rw + 1))


@cpu_jit
def _store_planes(K, T, P, dw, dhs, phs, n, pw, is_self, sym, end_buf, ecoff, oi, oj, out_d,
                  has_ntk, out_f):
    """A spatial output: each plane of a group into the end layout (full) or ``out_d``."""
    S = pw + 2 * P
    r0 = 0
    for g in range(n):
        dh, ph = dhs[g], phs[g]
        Kv, Tv = K[r0 * S:], T[r0 * S:]
        if out_f.shape[1] > 0:
            _store_compact(Kv, Tv, P, dh, dw, ph, pw, is_self and (dh != 0 or dw != 0),
                           end_buf, ecoff, has_ntk)
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
def _store_compact(K, T, P, dh, dw, ph, pw, twice, buf, ecoff, has_ntk):
    """A full spatial output: planes go to the end layout (unskewed once per pair, below)."""
    Rh, Rw = (ecoff.shape[0] - 1) // 2, (ecoff.shape[1] - 1) // 2
    for q in range(2 if has_ntk else 1):
        src = K if q == 0 else T
        store_compact_plane(src, P, dh, dw, ph, pw, buf[q], ecoff, Rh, Rw)
        if twice:
            store_compact_plane(src, P, -dh, -dw, ph, pw, buf[q], ecoff, Rh, Rw)


@cpu_jit
def _store_diag(K, T, P, ph, pw, sym, oi, oj, out_d, has_ntk):
    """A spatial-diagonal output: plane (0, 0) is the whole of it."""
    for q in range(2 if has_ntk else 1):
        src = K if q == 0 else T
        store_diag_plane(out_d[q, oi, oj], src, ph, pw, P)
        if sym:
            store_diag_plane(out_d[q, oj, oi], src, ph, pw, P)


@cpu_jit
def _skew_source(src, a, oi, oj, is_self, blocks, coff, comp, has_ntk):
    """A pair-tensor source (Neural Tangents' layout) into block 0's register 0."""
    c0 = _coff_view(coff, blocks, 0)
    Rh, Rw = blocks[0, 4], blocks[0, 5]
    if is_self:
        skew_to_compact(src[3][a], comp[0, 0, 0], c0, Rh, Rw)
        return
    skew_to_compact(src[1][oi, oj], comp[0, 0, 0], c0, Rh, Rw)
    if has_ntk:
        skew_to_compact(src[2][oi, oj], comp[0, 0, 1], c0, Rh, Rw)


@cpu_jit
def _open_registers(blocks, blk, treg, comp, nxt, has_ntk):
    """Zero the next block's registers this block scatters into (scatters only add)."""
    if blocks[blk, 16] == blocks[blk, 15]:
        return
    size = blocks[blk + 1, 12]
    for t in range(blocks[blk, 15], blocks[blk, 16]):
        comp[nxt, treg[t], 0, :size] = 0
        if has_ntk:
            comp[nxt, treg[t], 1, :size] = 0


@cpu_jit
def _close_registers(blocks, blk, pool, treg, inv_h, inv_w, tparams, comp, nxt, cn, has_ntk):
    """After all groups: divide pooled registers by their window counts, or finish a strided
    convolution's affine map (``K' = W2/f S_K + b2``, ``Theta' = K' + W2/f S_Theta``)."""
    size = blocks[blk + 1, 12] if blocks[blk, 16] > blocks[blk, 15] else 0
    for t in range(blocks[blk, 15], blocks[blk, 16]):
        reg = comp[nxt, treg[t]]
        if pool[t, 10] == 1:
            finish_strided_conv(reg[0], reg[1], size, tparams[t, 0], tparams[t, 1], has_ntk)
            continue
        Hn, Wn, Rn_h, Rn_w = pool[t, 6], pool[t, 7], pool[t, 8], pool[t, 9]
        for q in range(2 if has_ntk else 1):
            normalize_compact(reg[q], cn, Hn, Wn, Rn_h, Rn_w, inv_h[t], inv_w[t])


@cpu_jit
def _run_pair(a, b, oi, oj, is_self, sym, src, var, ops, fp, blocks, planes, groups, coff, pool,
              treg, inv_h, inv_w, tparams, ecoff, P, inv_c, has_ntk, bufs, acc, slots, comp,
              dhs, phs, out_s, out_f, out_d):
    """One image pair (a, b) through the whole program, results at [oi, oj] (and [oj, oi])."""
    cur = 0
    if src[0].shape[0] == 0:
        _skew_source(src, a, oi, oj, is_self, blocks, coff, comp, has_ntk)
    for blk in range(blocks.shape[0]):
        H, W, end = blocks[blk, 2], blocks[blk, 3], blocks[blk, 10]
        g0 = blocks[blk, 8] if is_self else blocks[blk, 6]
        gn = blocks[blk, 9] if is_self else blocks[blk, 7]
        nxt = 1 - cur
        cn = _coff_view(coff, blocks, min(blk + 1, blocks.shape[0] - 1))
        _open_registers(blocks, blk, treg, comp, nxt, has_ntk)
        acc_k, acc_t = 0.0, 0.0
        for gi in range(g0, g0 + gn):
            dw, p0, n = groups[gi, 0], groups[gi, 1], groups[gi, 2]
            for g in range(n):
                dhs[g] = planes[p0 + g, 0]
                phs[g] = H - abs(dhs[g])
            kb, n, pw, t_zero = _instrs(blk, a, b, is_self, dw, dhs, phs, n, W - abs(dw), src,
                                        blocks, coff, comp, cur, P, inv_c, ops, fp, var, bufs,
                                        acc, slots, pool, treg, cn, has_ntk)
            if n <= 0 or pw <= 0 or end == TR_NONE:
                continue
            K, T = bufs[kb], bufs[2 + kb]
            if has_ntk and t_zero:
                T[:] = 0
            if end == TR_GAP or end == TR_FLATTEN:
                acc_k += _group_sum(K, P, dw, dhs, phs, n, pw, is_self)
                if has_ntk:
                    acc_t += _group_sum(T, P, dw, dhs, phs, n, pw, is_self)
            else:
                _store_planes(K, T, P, dw, dhs, phs, n, pw, is_self, sym, comp[nxt, 0], ecoff,
                              oi, oj, out_d, has_ntk, out_f)
        _close_registers(blocks, blk, pool, treg, inv_h, inv_w, tparams, comp, nxt, cn, has_ntk)
        He, We = blocks[blk, 13], blocks[blk, 14]
        if end == TR_NONE:
            cur = nxt
        elif end == TR_GAP or end == TR_FLATTEN:
            m = He * He * We * We if end == TR_GAP else He * We
            _put_scalar(out_s, oi, oj, sym, acc_k / m, acc_t / m, has_ntk)
        elif out_f.shape[1] > 0:
            for q in range(2 if has_ntk else 1):
                unskew_from_compact(comp[nxt, 0, q], ecoff, out_f[q, oi, oj], out_f[q, oj, oi],
                                    sym)


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
              pool, treg, inv_h, inv_w, tparams, ecoff, P, inv_c, has_ntk, ws_planes, ws_acc,
              ws_slots, ws_comp, ws_idx, out_s, out_f, out_d):
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
                      ops, fp, blocks, planes, groups, coff, pool, treg, inv_h, inv_w, tparams,
                      ecoff, P, inv_c, has_ntk, ws_planes[slot], ws_acc[slot], ws_slots[slot],
                      ws_comp[slot], ws_idx[slot, 0], ws_idx[slot, 1], out_s, out_f, out_d)
