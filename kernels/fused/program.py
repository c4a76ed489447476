"""Compile a run of typed operations (``kernels.ops``) into the flat tables the engine's
loops read.

Operations (from the layers' ``fused_op()``):

    Conv, unit strides                  per plane; padding 'SAME' or 'VALID'
    Dual("abrelu", (a, b))              per plane (ABReLU-family nonlinearity)
    Affine(W2, b2)                      per plane (Dense on every spatial entry)
    Branches                            per plane: slots and a combine (``graph``)
    AvgPool, Conv with strides          transitions into a register of the next block
    GlobalAvgPool, Flatten              end the spatial part

``graph.lay_out`` cuts the run into *blocks* at the transitions (within a block every operation
maps each offset plane to itself, so a plane goes through the whole block at once) and writes
each block's instruction list. Each block also gets the *radius* of offsets it must compute,
folded back from what the end of the run needs: all offsets for a full-covariance output or
GlobalAvgPool, only (0, 0) for Flatten or a diagonal output, ``s R + w - 1`` before an average
pool whose output needs radius ``R`` and ``s R`` before a strided convolution (the largest
over the transitions leaving a block).
"""
import dataclasses

import numpy as np

from ..conv import out_size_and_pads
from ..ops import Conv, Dual, GlobalAvgPool
from ..pool import window_counts
from .emit import compact_offsets
from .graph import NotFusable, is_readout, is_transition, lay_out, supported, window
from .scalar import abrelu_constants

__all__ = ["Program", "compile_program", "supported", "is_readout", "is_transition",
           "NotFusable", "OP_CONV", "OP_ABRELU", "OP_AFFINE", "OP_LOAD", "OP_SAVE", "OP_RESTORE",
           "OP_COMBINE", "OP_SCATTER", "TR_GAP", "TR_FLATTEN", "TR_END", "TR_NONE"]

OP_CONV, OP_ABRELU, OP_AFFINE, OP_LOAD, OP_SAVE, OP_RESTORE, OP_COMBINE, OP_SCATTER = range(8)
TR_GAP, TR_FLATTEN, TR_END, TR_NONE = 1, 2, 3, 5
_INSTR = {"load": OP_LOAD, "save": OP_SAVE, "restore": OP_RESTORE, "combine": OP_COMBINE,
          "scatter": OP_SCATTER}


@dataclasses.dataclass
class Program:
    """The tables (see ``engine`` for how they are read)."""
    ops: np.ndarray        # (n_ops, 10) kind, fh|mode, fw, lo_h, lo_w, valid, H, W, var_off, arg
    fp: np.ndarray         # (n_ops, 2) conv: (W2/f, b2); affine: (W2, b2); abrelu: (A, F);
                           # combine: (alpha, beta)
    blocks: np.ndarray     # (n_blocks, 17): first op, end op, H, W, Rh, Rw, first full group,
                           # full groups, first half group, half groups, end (TR_*), coff
                           # base, layout size, end H, end W, first and end transition
    planes: np.ndarray     # (n, 2) offsets (dh, dw): per block the full list, then the half list
    groups: np.ndarray     # (n_groups, 3) dw, first plane, number of planes
    coff: np.ndarray       # flat compact-layout offsets of every block's registers
    pool: np.ndarray       # (n_tr, 11) wh, ww, sh, sw, lo_h, lo_w, Hn, Wn, Rnh, Rnw, diag
    treg: np.ndarray       # (n_tr,) the register of the next block each transition writes
    tparams: np.ndarray    # (n_tr, 2) strided conv: (W2 / f, b2)
    inv_h: np.ndarray      # (n_tr, Hmax) 1 / window count per pooled row
    inv_w: np.ndarray      # (n_tr, Wmax)
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
    n_regs: int            # most registers of one block
    n_slots: int           # most plane slots of one block


def _radii(layout, out_full):
    """Offset radius of every block, folded back from the end."""
    blocks = layout.blocks
    want_all = (layout.end is None and out_full) or isinstance(layout.end, GlobalAvgPool)
    R = (layout.end_hw[0] - 1, layout.end_hw[1] - 1) if want_all else (0, 0)
    radii = [None] * len(blocks)
    for b in range(len(blocks) - 1, -1, -1):
        H, W = blocks[b].hw
        if b < len(blocks) - 1:
            R = (0, 0)
            for t in blocks[b].transitions:
                extra = 0 if isinstance(t.op, Conv) else 1   # a convolution keeps d = s D
                w, s = window(t.op)
                R = tuple(max(R[i], s[i] * radii[b + 1][i] + extra * (w[i] - 1))
                          for i in range(2))
        radii[b] = (min(R[0], H - 1), min(R[1], W - 1))
    return radii


def _plane_step(block):
    """Before strided convolutions (all of one stride) only offsets d = s D are needed."""
    steps = {tuple(t.op.strides) if isinstance(t.op, Conv) else (1, 1)
             for t in block.transitions}
    return steps.pop() if len(steps) == 1 else (1, 1)


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


def _instr_rows(block, var_len, t0):
    """Rows of the op table and ``fp`` for one block's instructions (``t0``: the index of the
    block's first transition in the program's transition tables)."""
    rows, fps = [], []
    for ins in block.instrs:
        H, W = ins.hw
        if ins.kind != "op":
            arg = ins.arg + (t0 if ins.kind == "scatter" else 0)
            row = [_INSTR[ins.kind], ins.mode, 0, 0, 0, 0, H, W, 0, arg]
            rows.append(row)
            fps.append((ins.alpha, ins.beta))
            continue
        op = ins.op
        if isinstance(op, Conv):
            (fh, fw), valid = op.filter_shape, op.padding == "VALID"
            lo_h, lo_w = (0, 0) if valid else ((fh - 1) // 2, (fw - 1) // 2)
            rows.append([OP_CONV, fh, fw, lo_h, lo_w, int(valid), H, W, 0, 0])
            fps.append((op.W2 / (fh * fw), op.b2))
        elif isinstance(op, Dual):
            rows.append([OP_ABRELU, 1, 1, 0, 0, 0, H, W, var_len, 0])
            fps.append(abrelu_constants(*op.params))
            var_len += H * W
        else:
            rows.append([OP_AFFINE, 1, 1, 0, 0, 0, H, W, 0, 0])
            fps.append((op.W2, op.b2))
    return rows, fps, var_len


def _pool_row(t, radius_next):
    """Scatter parameters of an average pool or (``diag``) a strided convolution."""
    ((wh, ww), (sh, sw)), pad, hw = window(t.op), t.op.padding, t.hw_in
    lo_h = out_size_and_pads(hw[0], wh, sh, pad)[1]
    lo_w = out_size_and_pads(hw[1], ww, sw, pad)[1]
    conv = isinstance(t.op, Conv)
    inv_h = np.ones(hw[0]) if conv else 1.0 / window_counts(hw[0], wh, sh, pad,
                                                            t.op.normalize_edges)
    inv_w = np.ones(hw[1]) if conv else 1.0 / window_counts(hw[1], ww, sw, pad,
                                                            t.op.normalize_edges)
    row = [wh, ww, sh, sw, lo_h, lo_w, t.hw_out[0], t.hw_out[1], radius_next[0],
           radius_next[1], int(conv)]
    tp = (t.op.W2 / (wh * ww), t.op.b2) if conv else (1.0, 0.0)
    return row, inv_h, inv_w, tp


def _ring(layout):
    """P: the largest 'SAME' padding of a stride-1 convolution anywhere in the run."""
    pads = [max((f - 1) // 2, f // 2) for blk in layout.blocks for ins in blk.instrs
            if ins.kind == "op" and isinstance(ins.op, Conv) and ins.op.padding == "SAME"
            for f in ins.op.filter_shape]
    return max([0] + pads)


def _end_name(layout, out_full):
    if layout.end is None:
        return "full" if out_full else "diag"
    return "gap" if isinstance(layout.end, GlobalAvgPool) else "flatten"


def compile_program(ops, in_hw, dtype, out_full):
    """Tables for the run ``ops`` on inputs of spatial size ``in_hw``; ``out_full`` says
    whether a run that ends spatially must give the full covariance (else the diagonal).
    Raises ``NotFusable`` for a run the engine does not take."""
    layout = lay_out(ops, in_hw)
    radii = _radii(layout, out_full)
    Hmax, Wmax = in_hw
    pad_all = _ring(layout)
    end = _end_name(layout, out_full)
    end_kind = {"gap": TR_GAP, "flatten": TR_FLATTEN}.get(end, TR_END)
    rows, fps, blk_rows, planes, coffs, groups = [], [], [], [], [], []
    pool_rows, tregs, tparams, inv_h, inv_w = [], [], [], [], []
    var_len, coff_len, comp_len, last = 0, 0, 0, len(layout.blocks) - 1
    for b, blk in enumerate(layout.blocks):
        (H, W), (Rh, Rw) = blk.hw, radii[b]
        r, fp, var_len = _instr_rows(blk, var_len, len(pool_rows))
        full, half = _plane_lists(Rh, Rw, _plane_step(blk))
        off, size = compact_offsets(H, W, Rh, Rw)
        gfull = _groups(full, H, W, pad_all, len(planes))
        ghalf = _groups(half, H, W, pad_all, len(planes) + len(full))
        end_hw = layout.end_hw if b == last else blk.hw
        blk_rows.append([len(rows), len(rows) + len(r), H, W, Rh, Rw, len(groups), len(gfull),
                         len(groups) + len(gfull), len(ghalf),
                         end_kind if b == last else TR_NONE, coff_len, size, end_hw[0],
                         end_hw[1], len(pool_rows), len(pool_rows) + len(blk.transitions)])
        for t in blk.transitions:
            prow, ih, iw, tp = _pool_row(t, radii[b + 1])
            pool_rows.append(prow)
            tregs.append(t.reg)
            tparams.append(tp)
            inv_h.append(np.pad(ih, (0, Hmax - len(ih)), constant_values=1.0))
            inv_w.append(np.pad(iw, (0, Wmax - len(iw)), constant_values=1.0))
        groups += gfull + ghalf
        rows += r
        fps += fp
        planes += full + half
        coffs.append(off.ravel())
        coff_len += off.size
        comp_len = max(comp_len, size if b > 0 else 0)
    eh, ew = layout.end_hw
    end_off, end_len = compact_offsets(eh, ew, eh - 1, ew - 1)
    n_tr = len(pool_rows)
    return Program(ops=np.array(rows, dtype=np.int64).reshape(-1, 10),
                   fp=np.array(fps, dtype=dtype).reshape(-1, 2),
                   blocks=np.array(blk_rows, dtype=np.int64),
                   planes=np.array(planes, dtype=np.int64).reshape(-1, 2),
                   groups=np.array([g[:3] for g in groups], dtype=np.int64).reshape(-1, 3),
                   scratch_len=max(g[3] for g in groups),
                   group_max=max(g[2] for g in groups),
                   coff=np.concatenate(coffs).astype(np.int64),
                   pool=np.array(pool_rows, dtype=np.int64).reshape(n_tr, 11),
                   treg=np.array(tregs, dtype=np.int64),
                   tparams=np.array(tparams, dtype=dtype).reshape(n_tr, 2),
                   inv_h=np.array(inv_h, dtype=dtype).reshape(n_tr, Hmax),
                   inv_w=np.array(inv_w, dtype=dtype).reshape(n_tr, Wmax),
                   var_len=max(var_len, 1), comp_len=max(comp_len, 1), pad=pad_all, end=end,
                   out_hw=layout.end_hw, n_ops=len(rows), comp0_len=int(blk_rows[0][12]),
                   end_coff=end_off, end_len=end_len if end == "full" else 0,
                   n_regs=max(max(blk.n_regs for blk in layout.blocks), 1),
                   n_slots=max(max(blk.n_slots for blk in layout.blocks), 1))
