"""The CPU fusion planner: which runs of a ``serial`` network go to the fused engine.

``Serial.kernel`` (and ``Serial.kernel_fn`` for raw inputs) hand the layer list here. Layers
that describe themselves with ``fused_op()`` (typed operations of ``kernels.ops``: ``Dense`` ->
``Affine``, the ABReLU family -> ``Dual("abrelu", (a, b))``, ``Conv`` -> ``Conv``, ``AvgPool``,
``GlobalAvgPool``, ``Flatten``) and sit next to each other form a *run*; a run goes to one
fused routine instead of one pass over memory per layer:

- on (N1, N2) kernels (no spatial axes), a run of affine/abrelu layers goes to
  ``kernels.fc.fc_chain`` (one pass, upper triangle only when x2 is None);
- on 2-d spatial kernels, a run of conv (any strides)/abrelu/affine/avgpool layers and
  residual blocks (``FanOut``, ``parallel``, ``FanInSum``/``FanInProd``/``FanInConcat``: one
  ``ops.Branches``, see ``_plan.spatial_run``) ending, if it does, with ``GlobalAvgPool`` or
  ``Flatten`` goes to ``kernels.fused`` (groups of offset planes, all layers between two
  transitions while they sit in cache). A run at the network's inputs reads the raw images
  (``Serial.kernel_fn``), so the (N1, N2, H, H, W, W) input covariance is never built; a run on
  a covariance already computed (after a layer the engine does not take, e.g. a LayerNorm; the
  branches of a residual block that is not fused whole, planned inside ``parallel`` too) is
  taken when it pays (``_worth_on_kernel``).

Everything else runs through the layers' own ``kernel`` methods, exactly as without the planner.
The fused results equal the layer-by-layer ones to rounding (tests/kernels/test_fused_fc.py,
tests/stax/test_fused_engine.py).
Set ``INFWIDE_FUSION=0`` (or use ``fusion_disabled()``) to turn the planner off, e.g. to time
or check the unfused path.
"""
import contextlib
import os
import threading

import numpy as np

from ..backend import as_array, result_dtype
from ..device import cpu_fast_path_ok
from ..guards import check_memory
from ..kernel import Kernel
from ..kernels import fc
from ..kernels.gram import gram
from ..kernels.fused.chain import spatial_chain, spatial_chain_kernel
from ..kernels.fused.program import NotFusable, compile_program, is_readout
from ..kernels.ops import Affine, AvgPool, Branches, Conv, Dual
from ._inputs import canonical_inputs
from ._plan import make_plan, match_form, needs_of, spatial_run
from ..kernel import normalize_get as _normalize_get
from .layer import _is_spatial, _output

__all__ = ["serial_kernel", "kernel_from_inputs", "fusion_enabled",
           "fusion_disabled"]

_STATE = threading.local()   # per thread: how deep inside fusion_disabled() it is
_MIN_FC_RUN = 2


def fusion_enabled():
    """Whether the planner may fuse in this thread: not inside ``fusion_disabled()`` and
    INFWIDE_FUSION != 0."""
    return getattr(_STATE, "disabled", 0) == 0 and os.environ.get("INFWIDE_FUSION", "1") != "0"


@contextlib.contextmanager
def fusion_disabled():
    """Run the layers' own ``kernel`` methods only (the reference path) inside this block, in
    this thread (other threads keep fusing)."""
    _STATE.disabled = getattr(_STATE, "disabled", 0) + 1
    try:
        yield
    finally:
        _STATE.disabled -= 1


def _is_dual(op):
    return isinstance(op, Dual)


def _fc_run(layers, i, gaussian):
    """End (exclusive) of the run of affine/abrelu layers starting at ``i`` on (N1, N2) kernels.

    An abrelu layer whose input is not Gaussian stops the run, so that the layer itself raises
    its error message."""
    j = i
    while j < len(layers):
        op = layers[j].fused_op()
        if not fc.is_fc_op(op) or (_is_dual(op) and not gaussian):
            break
        gaussian = isinstance(op, Affine)
        j += 1
    return j


def _shapes_after(layers, k):
    s1, s2 = k.shape1, k.shape2
    for l in layers:
        s1, s2 = l.output_shape(s1), l.output_shape(s2)
    return s1, s2


def _run_fc(k, layers):
    ops = [l.fused_op() for l in layers]
    nngp, ntk, cov1, cov2, _ = fc.fc_chain(k.nngp, k.ntk, k.cov1, k.cov2, ops,
                                           x1_is_x2=k.x1_is_x2)
    s1, s2 = _shapes_after(layers, k)
    return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=s1, shape2=s2,
                     is_gaussian=isinstance(ops[-1], Affine))


def _can_fuse(k):
    if not fusion_enabled() or isinstance(k, list):
        return False
    return cpu_fast_path_ok(k.nngp, k.ntk, k.cov1, k.cov2)


def serial_kernel(serial, k, out_full=False):
    """``serial.kernel(k, out_full)``: fused runs where they apply, the layers' own ``kernel``
    methods elsewhere (and everywhere when fusion is off or the arrays live on a GPU)."""
    plan = make_plan(serial, out_full)
    if not _can_fuse(k):
        return _layer_by_layer(plan.layers, plan.reqs, k)
    return _run(plan.layers, plan.reqs, k)


def _run(layers, reqs, k):
    i = 0
    while i < len(layers):
        j = _fc_run(layers, i, k.is_gaussian) if _fc_ready(k) else i
        if j - i >= _MIN_FC_RUN:
            k = _run_fc(k, layers[i:j])
            i = j
            continue
        fused = _spatial_on_kernel(layers, reqs, i, k)
        if fused is not None:
            k, i = fused
            continue
        part = layers[i].branch_part()
        if part is not None and part.kind == "parallel" and isinstance(k, list) and \
                len(k) == len(part.branches):
            k = _parallel(part.branches, reqs[i], k)
        else:
            k = _layer_by_layer(layers[i:i + 1], reqs[i:i + 1], k)
        i += 1
    return k


def _parallel(branches, out_full, ks):
    """``Parallel.kernel`` with each branch planned too (the branches of a residual block the
    engine does not take whole: a bare strided ``Conv`` shortcut, a ``serial`` main path)."""
    out = []
    for l, ki in zip(branches, ks):
        plan = make_plan(l, out_full)
        out.append(_run(plan.layers, plan.reqs, match_form(ki, needs_of(l)(out_full), l)))
    return out


def _worth_on_kernel(ops):
    """With pair tensors read and written slab by slab (``kernels.fused.emit.skew_*``), a run
    with a convolution, a pooling, a residual block or a readout beats the layers' array code
    even alone (bench/NOTES.md, step 12); a lone nonlinearity or Dense is left to its layer."""
    return len(ops) >= 3 or any(isinstance(op, (Conv, AvgPool, Branches)) or is_readout(op)
                                for op in ops)


def _spatial_on_kernel(layers, reqs, i, k):
    """A spatial run starting at layer ``i`` on a full covariance already computed (e.g. a
    branch of a residual block): ``(kernel, next layer)`` or None."""
    if isinstance(k, list) or k.n_spatial != 2 or k.diagonal_spatial or \
            not cpu_fast_path_ok(k.nngp, k.ntk, k.cov1, k.cov2):
        return None
    if not layers[i].input_needs_full(reqs[i]):
        return None
    ops, gaussian, n = spatial_run(layers[i:], k.is_gaussian, k.shape1)
    if not _worth_on_kernel(ops):
        return None
    j = i + n
    try:
        prog = compile_program(ops, k.shape1[1:3], k.nngp.dtype, reqs[j - 1])
    except NotFusable:
        return None
    nngp, ntk, cov1, cov2 = spatial_chain_kernel(prog, k.nngp, k.ntk, k.cov1, k.cov2,
                                                 k.x1_is_x2, k.ntk is not None)
    s1, s2 = _shapes_after(layers[i:j], k)
    return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=s1, shape2=s2,
                     is_gaussian=gaussian, diagonal_spatial=prog.end != "full"), j


def _fc_ready(k):
    return not isinstance(k, list) and k.n_spatial == 0 and k.nngp.ndim == 2 \
        and cpu_fast_path_ok(k.nngp, k.ntk, k.cov1, k.cov2)


def _layer_by_layer(layers, reqs, k):
    for l, req in zip(layers, reqs):
        k = match_form(k, l.input_needs_full(req), l)
        k = l.kernel(k, out_full=req)
    return k


# -- spatial runs from the raw inputs -------------------------------------------------------
def _raw_inputs(serial, x1, x2):
    """Canonical (batch-first, channels-last) host inputs of one dtype (validated by
    ``check_inputs``); None when the engine cannot take them (GPU arrays, a Kernel,
    other than 0 or 2 spatial dimensions)."""
    if isinstance(x1, Kernel) or not cpu_fast_path_ok(as_array(x1, "x1"),
                                                        None if x2 is None else as_array(x2, "x2")):
        return None
    ba, ca = serial.input_axes() or (0, -1)
    if (ba % x1.ndim, ca % x1.ndim) != (0, x1.ndim - 1):
        return None   # the engine's output shapes are those of the canonical layout only
    x1c = canonical_inputs(x1, ba, ca)
    x2c = None if x2 is None else canonical_inputs(x2, ba, ca)
    if x1c.ndim not in (2, 4) or (x2c is not None and x2c.shape[1:] != x1c.shape[1:]):
        return None
    dtype = result_dtype(x1c, x2c)
    x1c = np.ascontiguousarray(x1c, dtype=dtype)
    return x1c, (None if x2c is None else np.ascontiguousarray(x2c, dtype=dtype))


def kernel_from_inputs(serial, x1, x2=None, get=None):
    """``serial.kernel_fn(x1, x2, get)`` with the leading fused run computed from the raw
    inputs (no input covariance tensor, no zero NTK); None when that does not apply, or when
    the result is not finite or underflowed (the caller then takes the ordinary path, whose
    guards name the layer at fault)."""
    if not fusion_enabled():
        return None
    xs = _raw_inputs(serial, x1, x2)
    if xs is None:
        return None
    names, as_tuple = _normalize_get(get)
    want_ntk = names is None or "ntk" in names
    out_shape = serial.output_shape(tuple(as_array(x1, "x1").shape))
    plan = make_plan(serial, _is_spatial(out_shape))
    layers, reqs = plan.layers, plan.reqs
    lead = _fc_from_inputs if xs[0].ndim == 2 else _spatial_from_inputs
    k, j, finite = lead(layers, xs, reqs, want_ntk)
    if k is None:
        return None
    k = _run(layers[j:], reqs[j:], k)
    if isinstance(k, list) or not _sound(k, xs, finite and j == len(layers)):
        return None
    return _output(k, names, as_tuple)


def _sound(k, xs, known_finite=False):
    """Finite, and (float32) not flushed to zero from non-zero inputs: else let the ordinary
    path recompute and raise its diagnosis (``infwide.guards``). ``known_finite``: the fused
    FC chain already checked every entry as it wrote it."""
    for m in (k.nngp, k.ntk):
        if m is not None and not known_finite and not np.isfinite(m).all():
            return False
    if k.nngp.dtype == np.float32 and not (k.nngp.flat[0] or np.any(k.nngp)) and \
            any(x is not None and np.any(x) for x in xs):
        return False
    return True


def _fc_from_inputs(layers, xs, reqs, want_ntk):
    """A leading affine/abrelu run on (N, d) inputs: the Gram matrix (BLAS; syrk when x2 is
    x1) feeds ``fc_chain`` directly, divided by d in its first pass."""
    j = _fc_run(layers, 0, False)
    if j < _MIN_FC_RUN:
        return None, 0, False
    x1, x2 = xs
    g = gram(x1, x2)
    d = x1.dtype.type(x1.shape[-1])
    # x2 None: the variances are the Gram diagonal over d, bit-equal to the diagonal the
    # chain computes (it divides by d on the way in); else a separate pass per side.
    cov1 = np.diagonal(g) / d if x2 is None else np.mean(x1 * x1, axis=-1)
    cov2 = None if x2 is None else np.mean(x2 * x2, axis=-1)
    ops = [l.fused_op() for l in layers[:j]]
    nngp, ntk, cov1, cov2, finite = fc.fc_chain(g, None, cov1, cov2, ops,
                                                x1_is_x2=x2 is None, want_ntk=want_ntk,
                                                in_div=x1.shape[-1], overwrite_nngp=True)
    s1, s2 = x1.shape, (x1 if x2 is None else x2).shape
    for l in layers[:j]:
        s1, s2 = l.output_shape(s1), l.output_shape(s2)
    k = Kernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=s1, shape2=s2,
               x1_is_x2=x2 is None, is_gaussian=isinstance(ops[-1], Affine),
               diagonal_spatial=True)
    return k, j, finite


def _spatial_from_inputs(layers, xs, reqs, want_ntk):
    ops, gaussian, j = spatial_run(layers, False, xs[0].shape)
    if not ops or (len(ops) == 1 and not isinstance(ops[0], Conv)):
        return None, 0, False
    try:
        prog = compile_program(ops, xs[0].shape[1:3], xs[0].dtype, reqs[j - 1])
    except NotFusable:
        return None, 0, False
    return _engine_kernel(layers[:j], prog, xs, want_ntk, gaussian), j, False


def _engine_kernel(layers, prog, xs, want_ntk, gaussian):
    x1, x2 = xs
    if prog.end in ("full", "diag"):   # a spatial output as large as the input covariance
        check_memory(layers[-1], x1, x2, prog.end == "full", x1.dtype.itemsize, want_ntk)
    nngp, ntk, cov1, cov2 = spatial_chain(prog, x1, x2, want_ntk)
    s1, s2 = x1.shape, (x1 if x2 is None else x2).shape
    for l in layers:
        s1, s2 = l.output_shape(s1), l.output_shape(s2)
    return Kernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=s1, shape2=s2,
                  x1_is_x2=x2 is None, is_gaussian=gaussian,
                  diagonal_spatial=prog.end != "full")
