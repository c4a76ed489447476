"""Lay a run of typed operations, residual branches included, out as per-block instruction lists.

The fused engine works block by block (a block: everything between two spatial transitions,
where each offset plane maps to itself) and, inside a block, one group of offset planes at a
time. A chain is one instruction list per block. ``ops.Branches`` (``FanOut``, branches,
fan-in) is entrywise, so inside a block it is a few more instructions on the same planes:

    SAVE s        keep a copy of the working planes (K and Theta) in slot s
    RESTORE s     the working planes become slot s again (the next branch starts there)
    COMBINE s     working = alpha slot + beta working (sum, concatenation's width-weighted
                  mean), or the product rule K = K_s K, Theta = Theta_s K + K_s Theta

A branch that meets a transition (a strided convolution or an average pool: the shortcut and
the main path of a down-sampling residual block) *scatters* its planes into a **register** of
the next block: one compact layout (K and Theta) per value crossing the boundary, so that
several values (the main path, the shortcut) cross at once and are combined there:

    SCATTER t     transition t of this block: the working planes into register t.reg of the
                  next block
    LOAD r        the working planes become register r of this block (block 0, register 0:
                  the images or the input pair tensors)

Slots live within one block (one group of planes at a time); registers are the only state
carried from a block to the next. Every branch of one ``Branches`` must end in the same block
at the same resolution, and 'VALID' convolutions (which shrink the planes) must not sit inside
a branch; otherwise ``NotFusable`` is raised and the caller keeps the layers' own path.
"""
import dataclasses
from typing import List, Optional, Tuple

from ..conv import out_size_and_pads
from ..ops import Affine, AvgPool, Branches, Conv, Dual, Flatten, GlobalAvgPool

__all__ = ["NotFusable", "Instr", "Transition", "Block", "Layout", "lay_out", "is_transition",
           "is_readout", "window"]


class NotFusable(ValueError):
    """The run has a shape the engine does not take (the caller runs the layers instead)."""


@dataclasses.dataclass
class Instr:
    """One instruction: ``kind`` in ("op", "load", "save", "restore", "combine", "scatter");
    ``op`` for "op"; ``arg`` the register, slot or transition index; ``hw`` the working
    resolution before it; ``mode``/``alpha``/``beta`` for "combine"."""
    kind: str
    op: object = None
    arg: int = 0
    hw: Tuple[int, int] = (0, 0)
    mode: int = 0
    alpha: float = 1.0
    beta: float = 1.0


@dataclasses.dataclass
class Transition:
    """A strided convolution or average pool from a value of resolution ``hw_in`` into
    register ``reg`` of the next block (resolution ``hw_out``)."""
    op: object
    reg: int
    hw_in: Tuple[int, int]
    hw_out: Tuple[int, int]


@dataclasses.dataclass
class Block:
    hw: Tuple[int, int]
    instrs: List[Instr] = dataclasses.field(default_factory=list)
    transitions: List[Transition] = dataclasses.field(default_factory=list)
    n_regs: int = 1
    n_slots: int = 0


@dataclasses.dataclass
class Layout:
    blocks: List[Block]
    end: Optional[object]          # GlobalAvgPool(), Flatten() or None (a spatial output)
    end_hw: Tuple[int, int]


def is_transition(op):
    """Whether ``op`` ends a block (it does not map each offset plane to itself)."""
    return isinstance(op, (AvgPool, GlobalAvgPool, Flatten)) or \
        (isinstance(op, Conv) and not op.unit_stride)


def is_readout(op):
    """Whether ``op`` ends the spatial part (GlobalAvgPool or Flatten)."""
    return isinstance(op, (GlobalAvgPool, Flatten))


def window(tr):
    """Window (filter) and strides of a pooling or strided-convolution transition."""
    return (tr.window, tr.strides) if isinstance(tr, AvgPool) else (tr.filter_shape, tr.strides)


def _valid_hw(op, hw):
    if isinstance(op, Conv) and op.padding == "VALID":
        return hw[0] - op.filter_shape[0] + 1, hw[1] - op.filter_shape[1] + 1
    return hw


class _Builder:
    def __init__(self, in_hw):
        self.blocks = [Block(tuple(in_hw))]
        self.blocks[0].instrs.append(Instr("load", arg=0, hw=tuple(in_hw)))
        self.end = None

    def emit(self, b, instr):
        self.blocks[b].instrs.append(instr)

    def slot(self, b):
        self.blocks[b].n_slots += 1
        return self.blocks[b].n_slots - 1

    def sequence(self, ops, b, hw, depth):
        """Lay out ``ops`` starting in block ``b`` at resolution ``hw``: (block, hw) after."""
        for op in ops:
            if self.end is not None:
                raise NotFusable("operations after the readout")
            if isinstance(op, Branches):
                b, hw = self.branches(op, b, hw, depth)
            elif is_readout(op):
                if depth:
                    raise NotFusable("a readout inside a branch")
                self.end = op
            elif is_transition(op):
                b, hw = self.transition(op, b, hw)
            else:
                if depth and isinstance(op, Conv) and op.padding == "VALID":
                    raise NotFusable("a 'VALID' convolution inside a branch")
                self.emit(b, Instr("op", op=op, hw=hw))
                hw = _valid_hw(op, hw)
        return b, hw

    def transition(self, op, b, hw):
        out = tuple(out_size_and_pads(n, w, s, op.padding)[0]
                    for n, w, s in zip(hw, *window(op)))
        if min(out) <= 0:
            raise NotFusable("a transition with an empty output")
        if b + 1 == len(self.blocks):
            self.blocks.append(Block(out, n_regs=0))
        nxt = self.blocks[b + 1]
        if nxt.hw != out:
            raise NotFusable("values of different resolutions crossing one block boundary")
        reg = nxt.n_regs
        nxt.n_regs += 1
        self.blocks[b].transitions.append(Transition(op, reg, hw, out))
        self.emit(b, Instr("scatter", arg=len(self.blocks[b].transitions) - 1, hw=hw))
        self.emit(b + 1, Instr("load", arg=reg, hw=out))
        return b + 1, out

    def branches(self, op, b, hw, depth):
        if not op.branches:
            raise NotFusable("no branches")
        s_in = self.slot(b)
        self.emit(b, Instr("save", arg=s_in, hw=hw))
        widths = op.widths or (1,) * len(op.branches)
        end, acc, total = None, None, 0.0
        for i, branch in enumerate(op.branches):
            if i:
                self.emit(b, Instr("restore", arg=s_in, hw=hw))
            bi, hwi = self.sequence(branch, b, hw, depth + 1)
            if i == 0:
                end, acc = (bi, hwi), self.slot(bi)
            elif (bi, hwi) != end:
                raise NotFusable("branches ending in different blocks or resolutions")
            else:
                self.emit(bi, _combine(op.combine, acc, hwi, total, widths[i]))
            total += widths[i]
            if i < len(op.branches) - 1:
                self.emit(bi, Instr("save", arg=acc, hw=hwi))
        return end


def _combine(kind, slot, hw, total, width):
    """``working = alpha slot + beta working`` (sum; concatenation: the running mean of the
    branches weighted by their widths), or the product rule (``mode`` 1)."""
    if kind == "prod":
        return Instr("combine", arg=slot, hw=hw, mode=1)
    if kind == "concat":
        return Instr("combine", arg=slot, hw=hw, alpha=total / (total + width),
                     beta=width / (total + width))
    return Instr("combine", arg=slot, hw=hw)


def lay_out(ops, in_hw):
    """Per-block instruction lists of the run ``ops`` on inputs of spatial size ``in_hw``."""
    builder = _Builder(in_hw)
    b, hw = builder.sequence(ops, 0, tuple(in_hw), 0)
    if b != len(builder.blocks) - 1:
        raise NotFusable("the run ends before its last block")
    return Layout(builder.blocks, builder.end, hw)


def supported(op, n_spatial=2):
    """Whether the engine runs this operation (2-d, 'SAME'/'VALID' padding, ABReLU duals;
    ``Branches`` of supported operations)."""
    if isinstance(op, Conv):
        return len(op.filter_shape) == n_spatial == 2 and op.padding in ("SAME", "VALID")
    if isinstance(op, AvgPool):
        return len(op.window) == n_spatial == 2 and op.padding in ("SAME", "VALID")
    if isinstance(op, Dual):
        return op.kind == "abrelu"
    if isinstance(op, Branches):
        return op.combine in ("sum", "prod", "concat") and \
            all(supported(o, n_spatial) for br in op.branches for o in br)
    return isinstance(op, (Affine, GlobalAvgPool, Flatten))
