"""The CPU fusion planner: which runs of a ``serial`` network go to the fused engine.

``Serial.kernel`` (and ``Serial.kernel_fn`` for raw inputs) hand the layer list here. Layers
that describe themselves with ``fused_op()`` (``Dense`` -> ``("affine", W2, b2)``, the ABReLU
family -> ``("abrelu", a, b)``, ``Conv`` -> ``("conv", ...)``, ``AvgPool``, ``GlobalAvgPool``,
``Flatten``) and sit next to each other form a *run*; a run goes to one fused routine instead of
one pass over memory per layer:

- on (N1, N2) kernels (no spatial axes), a run of affine/abrelu layers goes to
  ``kernels.fc.fc_chain`` (one pass, upper triangle only when x2 is None);
- on 2-d spatial kernels, a run of conv/abrelu/affine/avgpool layers ending, if it does, with
  ``GlobalAvgPool`` or ``Flatten`` goes to ``kernels.fused.engine`` (one offset plane at a time,
  all layers between two poolings while the plane sits in cache); when the run starts at the
  network's inputs the engine reads the raw images, so the (N1, N2, H, H, W, W) input covariance
  is never built.

Everything else runs through the layers' own ``kernel`` methods, exactly as without the planner.
The fused results equal the layer-by-layer ones to rounding (tests/test_fused_planner.py).
Set ``INFWIDE_FUSION=0`` (or use ``fusion_disabled()``) to turn the planner off, e.g. to time
or check the unfused path.
"""
import contextlib
import os

from ..device import cpu_fast_path_ok
from ..kernels import fc
from .combinators import Repeat, Serial, match_form

__all__ = ["serial_kernel", "flatten_layers", "fusion_enabled", "fusion_disabled"]

_DISABLED = [0]
_MIN_FC_RUN = 2


def fusion_enabled():
    """Whether the planner may fuse: not inside ``fusion_disabled()`` and INFWIDE_FUSION != 0."""
    return _DISABLED[0] == 0 and os.environ.get("INFWIDE_FUSION", "1") != "0"


@contextlib.contextmanager
def fusion_disabled():
    """Run the layers' own ``kernel`` methods only (the reference path) inside this block."""
    _DISABLED[0] += 1
    try:
        yield
    finally:
        _DISABLED[0] -= 1


def flatten_layers(layer):
    """The layers of nested ``serial``/``repeat`` as one flat list (other layers kept whole).

    Flattening does not change the kernel: ``Serial`` and ``Repeat`` fold the same requirements
    and call the same layers in the same order."""
    if isinstance(layer, Serial):
        return [l for sub in layer.layers for l in flatten_layers(sub)]
    if isinstance(layer, Repeat):
        return [l for _ in range(layer.n) for l in flatten_layers(layer.layer)]
    return [layer]


def _requirements(layers, out_full):
    reqs = [out_full] * len(layers)
    for i in range(len(layers) - 1, 0, -1):
        reqs[i - 1] = layers[i].input_needs_full(reqs[i])
    return reqs


def _op(layer):
    f = getattr(layer, "fused_op", None)
    return f() if f is not None else None


def _fc_run(layers, i, gaussian):
    """End (exclusive) of the run of affine/abrelu layers starting at ``i`` on (N1, N2) kernels.

    An abrelu layer whose input is not Gaussian stops the run, so that the layer itself raises
    its error message."""
    j = i
    while j < len(layers):
        op = _op(layers[j])
        if not fc.is_fc_op(op) or (op[0] == "abrelu" and not gaussian):
            break
        gaussian = op[0] == "affine"
        j += 1
    return j


def _shapes_after(layers, k):
    s1, s2 = k.shape1, k.shape2
    for l in layers:
        s1, s2 = l.output_shape(s1), l.output_shape(s2)
    return s1, s2


def _run_fc(k, layers):
    ops = [_op(l) for l in layers]
    nngp, ntk, cov1, cov2 = fc.fc_chain(k.nngp, k.ntk, k.cov1, k.cov2, ops,
                                        x1_is_x2=k.x1_is_x2)
    s1, s2 = _shapes_after(layers, k)
    return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=s1, shape2=s2,
                     is_gaussian=ops[-1][0] == "affine", is_input=False)


def _can_fuse(k):
    if not fusion_enabled() or isinstance(k, list):
        return False
    return cpu_fast_path_ok(k.nngp, k.ntk, k.cov1, k.cov2)


def serial_kernel(serial, k, out_full=False, **kwargs):
    """``serial.kernel(k, out_full)``: fused runs where they apply, the layers' own ``kernel``
    methods elsewhere (and everywhere when fusion is off or the arrays live on a GPU)."""
    if not _can_fuse(k):
        return _layer_by_layer(serial.layers, serial.requirements(out_full), k, **kwargs)
    layers = flatten_layers(serial)
    reqs = _requirements(layers, out_full)
    i = 0
    while i < len(layers):
        j = _fc_run(layers, i, k.is_gaussian) if _fc_ready(k) else i
        if j - i >= _MIN_FC_RUN:
            k = _run_fc(k, layers[i:j])
            i = j
            continue
        k = _layer_by_layer(layers[i:i + 1], reqs[i:i + 1], k, **kwargs)
        i += 1
    return k


def _fc_ready(k):
    return not isinstance(k, list) and k.n_spatial == 0 and k.nngp.ndim == 2 \
        and cpu_fast_path_ok(k.nngp, k.ntk, k.cov1, k.cov2)


def _layer_by_layer(layers, reqs, k, **kwargs):
    for l, req in zip(layers, reqs):
        k = match_form(k, l.input_needs_full(req), l)
        k = l.kernel(k, out_full=req, **kwargs)
    return k
