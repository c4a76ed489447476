"""The layout of a fused run into per-block instruction lists (``kernels.fused.graph``) and
the tables compiled from it: a down-sampling residual block sends two registers across the
boundary, slots stay within a block, scatters index the program's transition tables, and the
shapes the engine does not take raise ``NotFusable`` (the planner then keeps the layers)."""
import numpy as np
import pytest

from infwide.kernels.fused.graph import NotFusable, lay_out
from infwide.kernels.fused.program import OP_SCATTER, compile_program
from infwide.kernels.ops import AvgPool, Branches, Conv, Dual, GlobalAvgPool

RELU = Dual("abrelu", (0.0, 1.0))


def conv(s=(1, 1), pad="SAME", f=(3, 3)):
    return Conv(f, s, pad, 1.0, 0.0)


def strided_block():
    return Branches(((RELU, conv((2, 2)), RELU, conv()), (conv((2, 2)),)))


def test_a_strided_residual_block_carries_two_registers():
    lay = lay_out([conv(), strided_block(), strided_block(), GlobalAvgPool()], (8, 8))
    assert [b.hw for b in lay.blocks] == [(8, 8), (4, 4), (2, 2)]
    assert [b.n_regs for b in lay.blocks] == [1, 2, 2]
    assert [len(b.transitions) for b in lay.blocks] == [2, 2, 0]
    kinds = [i.kind for i in lay.blocks[1].instrs]
    assert kinds == ["load", "op", "op", "save", "load", "combine",          # the first block
                     "save", "op", "scatter", "restore", "scatter"]        # the second one
    assert isinstance(lay.end, GlobalAvgPool) and lay.end_hw == (2, 2)


def test_identity_branch_combines_in_the_same_block():
    lay = lay_out([conv(), Branches(((RELU, conv()), ())), GlobalAvgPool()], (5, 5))
    assert len(lay.blocks) == 1 and lay.blocks[0].n_slots == 2
    assert [i.kind for i in lay.blocks[0].instrs] == ["load", "op", "save", "op", "op", "save",
                                                      "restore", "combine"]


def test_concat_weights_are_a_running_mean():
    lay = lay_out([conv(), Branches(((conv(),), (conv(),), (conv(),)), "concat", (1, 2, 3))],
                  (4, 4))
    mixes = [(i.alpha, i.beta) for i in lay.blocks[0].instrs if i.kind == "combine"]
    assert mixes == [(1 / 3, 2 / 3), (3 / 6, 3 / 6)]


def test_scatters_index_the_program_tables():
    prog = compile_program([conv(), strided_block(), strided_block(), GlobalAvgPool()], (8, 8),
                           np.float64, False)
    scat = prog.ops[prog.ops[:, 0] == OP_SCATTER, 9]
    assert list(scat) == [0, 1, 2, 3]
    assert list(prog.treg) == [0, 1, 0, 1] and prog.n_regs == 2
    assert prog.pool[:, 10].tolist() == [1, 1, 1, 1]   # strided convolutions (p == q only)


@pytest.mark.parametrize("ops, why", [
    ([conv(), Branches(((RELU, conv((2, 2))), ())), GlobalAvgPool()], "different blocks"),
    ([conv(), Branches(((RELU, conv(pad="VALID")), (conv(),)))], "'VALID'"),
    ([conv(), Branches(((conv((2, 2)),), (AvgPool((2, 2), (3, 3), "VALID", False),)))],
     "different resolutions"),
    ([conv(), Branches(((conv(), GlobalAvgPool()), (conv(),)))], "readout inside a branch"),
])
def test_shapes_the_engine_does_not_take(ops, why):
    with pytest.raises(NotFusable, match=why):
        lay_out(ops, (6, 6))
