"""Compile a run of typed operations (``kernels.ops``) into the flat tables the engine's
loops read.

Operations (from the layers' ``fused_op()``):

    Conv, unit strides                  per plane; padding 'SAME' or 'VALID'
    Dual("abrelu", (a, b))              per plane (ABReLU-family nonlinearity)
    Affine(W2, b2)                      per plane (Dense on every spatial entry)
    AvgPool, Conv with strides          transitions into the next block
    GlobalAvgPool, Flatten              transitions that end the spatial part

The run is cut into *blocks* at the poolings: within a block every operation maps each offset
plane to itself, so a plane goes through the whole block at once. Each block also gets the
*radius* of offsets it must compute, folded back from what the end of the run needs: all
offsets for a full-covariance output or GlobalAvgPool, only (0, 0) for Flatten or a diagonal
output, and ``s R + w - 1`` before an average pool whose output needs radius ``R``.
"""
import dataclasses

import numpy as np

from ..conv import out_size_and_pads
from ..ops import Affine, AvgPool, Conv, Dual, Flatten, GlobalAvgPool
from ..pool import window_counts
from .emit import compact_offsets
from .scalar import abrelu_constants

__all__ = ["Program", "compile_program", "supported", "OP_CONV", "OP_ABRELU", "OP_AFFINE",
           "TR_POOL", "TR_GAP", "TR_FLATTEN", "TR_END", "TR_SCONV"]

OP_CONV, OP_ABRELU, OP_AFFINE = 0, 1, 2
TR_POOL, TR_GAP, TR_FLATTEN, TR_END, TR_SCONV = 0, 1, 2, 3, 4
_PADDINGS = ("SAME", "VALID")


def supported(op, n_spatial=2):
    """Whether the engine runs this operation (2-d, 'SAME'/'VALID' padding, ABReLU duals)."""
    if isinstance(op, Conv):
        return len(op.filter_shape) == n_spatial == 2 and op.padding in _PADDINGS
    if isinstance(op, AvgPool):
        return len(op.window) == n_spatial == 2 and op.padding in _PADDINGS
    if isinstance(op, Dual):
        return op.kind == "abrelu"
    return isinstance(op, (Affine, GlobalAvgPool, Flatten))


def is_transition(op):
    """Whether ``op`` ends a block (it does not map each offset plane to itself)."""
    return isinstance(op, (AvgPool, GlobalAvgPool, Flatten)) or \
        (isinstance(op, Conv) and not op.unit_stride)


def is_readout(op):
    """Whether ``op`` ends the spatial part (GlobalAvgPool or Flatten)."""
    return isinstance(op, (GlobalAvgPool, Flatten))


def _is_strided_conv(op):
    return isinstance(op, Conv) and not op.unit_stride


def _window(tr):
    """Window (filter) and strides of a pooling or strided-convolution transition."""
    return (tr.window, tr.strides) if isinstance(tr, AvgPool) else (tr.filter_shape, tr.strides)


@dataclasses.dataclass
class Program:
    """The tables (see ``engine`` for how they are read)."""
    ops: np.ndarray        # (n_ops, 10) kind, fh, fw, lo_h, lo_w, valid, Hin, Win, var_off, -
    fp: np.ndarray         # (n_ops, 2) conv: (W2/f, b2); affine: (W2, b2); abrelu: (A, F)
    blocks: np.ndarray     # (n_blocks, 16), see compile_program
    planes: np.ndarray     # (n, 2) offsets (dh, dw): per block the full list, then the half list
    groups: np.ndarray     # (n_groups, 3) dw, first plane, number of planes
    coff: np.ndarray       # flat compact-layout offsets of every block's input
    pool: np.ndarray       # (n_blocks, 11) wh, ww, sh, sw, lo_h, lo_w, Hn, Wn, Rnh, Rnw, diag
    tparams: np.ndarray    # (n_blocks, 2) strided conv: (W2 / f, b2)
    inv_h: np.ndarray      # (n_blocks, Hmax) 1 / window count per pooled row
    inv_w: np.ndarray      # (n_blocks, Wmax)
    var_len: int           # length of one image's variance row
    comp_len: int          # largest compact layout (the per-pair workspace)
    comp0_len: int         # compact layout of block 0 (read from pair tensors, see emit.skew)
    end_coff: np.ndarray   # compact layout of a full spatial output, all offsets
    end_len: int
    scratch_len: int       # entries of one group buffer
    group_max: int         # most planes in a group
    pad: int               # P, the zero ring of the plane scratch buffers
    end: str               # "gap", "flatten", "full" or "diag"
    out_hw: tuple          # spatial size at the end of the run
    n_ops: int


def _blocks(ops):
    """Split into [(per-plane ops, transition op or None)]."""
    out, cur = [], []
    for op in ops:
        if is_transition(op):
            out.append((cur, op))
            cur = []
        else:
            cur.append(op)
    if cur or not out or not is_readout(out[-1][1]):
        out.append((cur, None))
    return out


def _res_after(ops, H, W):
    for op in ops:
        if isinstance(op, Conv) and op.padding == "VALID":
            H, W = H - op.filter_shape[0] + 1, W - op.filter_shape[1] + 1
    return H, W


def _radii(blocks, in_hw, out_full):
    """Input resolution and offset radius of every block (folded back from the end)."""
    res = [in_hw]
    for body, tr in blocks[:-1]:
        H, W = _res_after(body, *res[-1])
        res.append(tuple(out_size_and_pads(n, w, s, tr.padding)[0]
                         for n, w, s in zip((H, W), *_window(tr))))
    last_body, last_tr = blocks[-1]
    H, W = _res_after(last_body, *res[-1])
    want_all = (last_tr is None and out_full) or isinstance(last_tr, GlobalAvgPool)
    R = (H - 1, W - 1) if want_all else (0, 0)
    radii = [None] * len(blocks)
    for b in range(len(blocks) - 1, -1, -1):
        H, W = res[b]
        radii[b] = (min(R[0], H - 1), min(R[1], W - 1))
        if b > 0:
            tr = blocks[b - 1][1]
            extra = 0 if isinstance(tr, Conv) else 1   # a convolution keeps offsets: d = s D
            R = tuple(s * r + extra * (w - 1) for r, w, s in zip(radii[b], *_window(tr)))
    return res, radii


def _plane_lists(Rh, Rw, step=(1, 1)):
    """All offsets ordered by dw then dh, and the half a self pair needs (dw > 0, or dw = 0
    and dh >= 0: the mirror of (dh, dw) is (-dh, -dw)), starting with (0, 0). Before a
    strided convolution only multiples of its strides are needed (d = s D)."""
    keep = lambda a, b: a % step[0] == 0 and b % step[1] == 0
    full = [(a, b) for b in range(-Rw, Rw + 1) for a in range(-Rh, Rh + 1) if keep(a, b)]
    half = [(a, 0) for a in range(0, Rh + 1) if keep(a, 0)] + \
        [(a, b) for b in range(1, Rw + 1) for a in range(-Rh, Rh + 1) if keep(a, b)]
    return full, half


#: Most scratch entries of a group of planes: small planes are stacked so that one flat loop
#: (and one loop set-up) serves many of them; 2048 entries keep a group's working set
#: (6 buffers) in L2. See bench/NOTES.md.
GROUP_ENTRIES = 4096


def _groups(plist, H, W, P, first):
    """Runs of consecutive planes with equal dw, each at most GROUP_ENTRIES entries (a plane
    larger than that is a group on its own): rows (dw, first plane index, count)."""
    out, i = [], 0
    while i < len(plist):
        dw = plist[i][1]
        S = W - abs(dw) + 2 * P
        j, rows = i, P
        while j < len(plist) and plist[j][1] == dw:
            more = H - abs(plist[j][0]) + P
            if j > i and (rows + more + 1) * S > GROUP_ENTRIES:
                break
            rows += more
            j += 1
        out.append((dw, first + i, j - i, (rows + 1) * S))
        i = j
    return out


def _op_rows(body, H, W, dtype, var_len):
    rows, fps = [], []
    for op in body:
        if isinstance(op, Conv):
            (fh, fw), valid = op.filter_shape, op.padding == "VALID"
            lo_h, lo_w = (0, 0) if valid else ((fh - 1) // 2, (fw - 1) // 2)
            rows.append([OP_CONV, fh, fw, lo_h, lo_w, int(valid), H, W, 0, 0])
            fps.append((op.W2 / (fh * fw), op.b2))
            H, W = _res_after([op], H, W)
        elif isinstance(op, Dual):
            rows.append([OP_ABRELU, 1, 1, 0, 0, 0, H, W, var_len, 0])
            fps.append(abrelu_constants(*op.params))
            var_len += H * W
        else:
            rows.append([OP_AFFINE, 1, 1, 0, 0, 0, H, W, 0, 0])
            fps.append((op.W2, op.b2))
    return rows, fps, var_len, (H, W)


def _pool_row(tr, hw, radius_next, nxt_hw):
    """Scatter parameters of an average pool or (``diag``) a strided convolution."""
    ((wh, ww), (sh, sw)), pad = _window(tr), tr.padding
    lo_h = out_size_and_pads(hw[0], wh, sh, pad)[1]
    lo_w = out_size_and_pads(hw[1], ww, sw, pad)[1]
    conv = isinstance(tr, Conv)
    inv_h = np.ones(hw[0]) if conv else 1.0 / window_counts(hw[0], wh, sh, pad,
                                                            tr.normalize_edges)
    inv_w = np.ones(hw[1]) if conv else 1.0 / window_counts(hw[1], ww, sw, pad,
                                                            tr.normalize_edges)
    row = [wh, ww, sh, sw, lo_h, lo_w, nxt_hw[0], nxt_hw[1], radius_next[0], radius_next[1],
           int(conv)]
    return row, inv_h, inv_w


def _transition_code(tr):
    if tr is None:
        return TR_END
    if isinstance(tr, Conv):
        return TR_SCONV
    return {AvgPool: TR_POOL, GlobalAvgPool: TR_GAP, Flatten: TR_FLATTEN}[type(tr)]


def compile_program(ops, in_hw, dtype, out_full):
    """Tables for the run ``ops`` on inputs of spatial size ``in_hw``; ``out_full`` says
    whether a run that ends spatially must give the full covariance (else the diagonal)."""
    blocks = _blocks(ops)
    res, radii = _radii(blocks, tuple(in_hw), out_full)
    Hmax, Wmax = in_hw
    op_rows, fps, blk_rows, planes, coffs, pool_rows, groups = [], [], [], [], [], [], []
    pad_all = max([0] + [max((f - 1) // 2, f // 2) for op in ops
                         if isinstance(op, Conv) and op.unit_stride and op.padding == "SAME"
                         for f in op.filter_shape])
    inv_h = np.ones((len(blocks), Hmax))
    inv_w = np.ones((len(blocks), Wmax))
    tparams = np.zeros((len(blocks), 2))
    var_len, coff_len, comp_len = 0, 0, 0
    for b, (body, tr) in enumerate(blocks):
        (H, W), (Rh, Rw) = res[b], radii[b]
        rows, fp, var_len, end_hw = _op_rows(body, H, W, dtype, var_len)
        step = tuple(tr.strides) if _is_strided_conv(tr) else (1, 1)
        full, half = _plane_lists(Rh, Rw, step)
        off, size = compact_offsets(H, W, Rh, Rw)
        gfull = _groups(full, H, W, pad_all, len(planes))
        ghalf = _groups(half, H, W, pad_all, len(planes) + len(full))
        kind = _transition_code(tr)
        blk_rows.append([len(op_rows), len(op_rows) + len(rows), H, W, Rh, Rw,
                         len(groups), len(gfull), len(groups) + len(gfull), len(ghalf),
                         kind, coff_len, size, end_hw[0], end_hw[1], 0])
        groups += gfull + ghalf
        op_rows += rows
        fps += fp
        planes += full + half
        coffs.append(off.ravel())
        coff_len += off.size
        comp_len = max(comp_len, size if b > 0 else 0)
        prow = [0] * 11
        if kind in (TR_POOL, TR_SCONV):
            prow, ih, iw = _pool_row(tr, end_hw, radii[b + 1], res[b + 1])
            inv_h[b, :len(ih)], inv_w[b, :len(iw)] = ih, iw
        if kind == TR_SCONV:
            tparams[b] = (tr.W2 / (tr.filter_shape[0] * tr.filter_shape[1]), tr.b2)
        pool_rows.append(prow)
    last_tr = blocks[-1][1]
    end = {TR_GAP: "gap", TR_FLATTEN: "flatten"}.get(_transition_code(last_tr),
                                                      "full" if out_full else "diag")
    end_hw = _res_after(blocks[-1][0], *res[-1])
    end_off, end_len = compact_offsets(end_hw[0], end_hw[1], end_hw[0] - 1, end_hw[1] - 1)
    return Program(ops=np.array(op_rows, dtype=np.int64).reshape(-1, 10),
                   fp=np.array(fps, dtype=dtype).reshape(-1, 2),
                   blocks=np.array(blk_rows, dtype=np.int64),
                   planes=np.array(planes, dtype=np.int64).reshape(-1, 2),
                   groups=np.array([g[:3] for g in groups], dtype=np.int64).reshape(-1, 3),
                   scratch_len=max(g[3] for g in groups),
                   group_max=max(g[2] for g in groups),
                   coff=np.concatenate(coffs).astype(np.int64),
                   pool=np.array(pool_rows, dtype=np.int64),
                   inv_h=inv_h.astype(dtype), inv_w=inv_w.astype(dtype),
                   tparams=tparams.astype(dtype),
                   var_len=max(var_len, 1), comp_len=max(comp_len, 1), pad=pad_all, end=end,
                   out_hw=end_hw, n_ops=len(op_rows), comp0_len=int(blk_rows[0][12]),
                   end_coff=end_off, end_len=end_len if end == "full" else 0)
