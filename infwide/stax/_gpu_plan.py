"""GPU execution of a ``serial`` network's kernel: runs of (3x3 stride-1 'ntk' Conv,
ABReLU-family or Erf activation) layers on full spatial covariances go to the fused CUDA block
(``kernels.cuda.block.conv_block``), VALID average pools to ``kernels.cuda.pool``; every
other layer runs its own ``kernel`` (array code through ``xp``, i.e. CuPy on a GPU).

Used by ``Layer.kernel_fn`` for GPU inputs only (``infwide.device.on_gpu``), so Numba CPU
routines never see device arrays and ``numba.cuda`` is imported only then. It runs the same
plan as the CPU runner (``_plan.make_plan``: flat layers, requirements, typed operations).
"""
from ..kernels.cuda.reference import ACT_ABRELU, ACT_ERF
from ..kernels.ops import AvgPool, Conv, Dual
from ._plan import make_plan, match_form, needs_of

__all__ = ["steps", "serial_kernel_gpu"]


_ACT_CODES = {"abrelu": ACT_ABRELU, "erf": ACT_ERF}


def _act_row(op):
    """``(kind, a, b, c)`` for an ABReLU-family layer (``Dual("abrelu", (a, b))``) or an
    ``Erf`` (``Dual("erf", (a, b, c))``: ``a erf(b x) + c``, Sigmoid_like included), else
    None."""
    if not isinstance(op, Dual) or op.kind not in _ACT_CODES:
        return None
    params = tuple(float(p) for p in op.params) + (0.0,) * (3 - len(op.params))
    return (_ACT_CODES[op.kind],) + params


def _conv_row(op):
    """``(padding, W2, b2)`` for a 3x3 stride-1 'ntk' 2-d convolution, else None."""
    if not isinstance(op, Conv) or not op.unit_stride or tuple(op.filter_shape) != (3, 3):
        return None
    return op.padding, op.W2, op.b2


def steps(plan):
    """Steps ``("block", i, j, padding)`` (layers ``i..j-1`` fused) or ``("layer", i)``."""
    ops, out, i = plan.ops, [], 0
    while i < len(ops):
        j, pad = i, None
        while j + 1 < len(ops):
            conv, act = _conv_row(ops[j]), _act_row(ops[j + 1])
            if conv is None or act is None or (pad is not None and conv[0] != pad):
                break
            pad, j = conv[0], j + 2
        out.append(("block", i, j, pad) if j > i else ("layer", i))
        i = max(j, i + 1)
    return out


def _run_block(k, layers, ops, pad):
    from ..kernels.cuda.block import conv_block
    from ..kernels.cuda.reference import layer_coefficients
    coefs = [layer_coefficients(l.W_std, l.b_std) for l in layers[0::2]]
    acts = [_act_row(op) for op in ops[1::2]]
    nngp, ntk, cov1, cov2 = conv_block(k.nngp, k.ntk, k.cov1, k.cov2, coefs, acts, pad)
    H, W = nngp.shape[2], nngp.shape[4]
    c = layers[-2].out_chan
    return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
                     shape1=(k.shape1[0], H, W, c), shape2=(k.shape2[0], H, W, c),
                     is_gaussian=False)


def _run_pool(k, op):
    """VALID 2-d AvgPool of full covariances on the GPU; None when another path is needed."""
    if not isinstance(op, AvgPool) or op.padding != "VALID" or len(op.window) != 2 or \
            k.n_spatial != 2:
        return None
    from ..kernels.cuda.pool import avg_pool_full_cuda
    out = k.map_covariances(lambda m, nb: avg_pool_full_cuda(m, nb, op.window, op.strides))
    H, W = out.nngp.shape[2], out.nngp.shape[4]
    return out.replace(shape1=(k.shape1[0], H, W, k.shape1[-1]),
                       shape2=(k.shape2[0], H, W, k.shape2[-1]))


def serial_kernel_gpu(layer, k, out_full):
    """``layer.kernel(k, out_full)`` with the fused CUDA paths where they apply (also inside
    the branches of a residual block, each run by its own plan)."""
    plan = make_plan(layer, out_full)
    layers, reqs = plan.layers, plan.reqs
    for step in steps(plan):
        i = step[1]
        full_2d = (not isinstance(k, list) and not k.diagonal_spatial and k.n_spatial == 2
                   and plan.needs_full_input(i))
        if step[0] == "block" and full_2d:
            k = _run_block(k, layers[i:step[2]], plan.ops[i:step[2]], step[3])
            continue
        stop = step[2] if step[0] == "block" else i + 1
        for m in range(i, stop):
            k = _run_layer(k, layers[m], plan.ops[m], plan.needs_full_input(m), reqs[m])
    return k


def _run_layer(k, layer, op, need_full, out_full):
    """One layer: the CUDA pool, a ``parallel`` whose branches are planned in turn, or the
    layer's own ``kernel``."""
    k = match_form(k, need_full, layer)
    part = layer.branch_part()
    if isinstance(k, list):
        if part is not None and part.kind == "parallel" and len(k) == len(part.branches):
            return [serial_kernel_gpu(l, match_form(ki, needs_of(l)(out_full), l), out_full)
                    for l, ki in zip(part.branches, k)]
        return layer.kernel(k, out_full=out_full)
    pooled = _run_pool(k, op) if not k.diagonal_spatial else None
    return pooled if pooled is not None else layer.kernel(k, out_full=out_full)
