"""The plan of a network: its flat layer list, the spatial form each layer needs, and the
typed operations (``kernels.ops``) of the runs the fused engines take.

- ``flatten_layers``: nested ``serial``/``repeat`` as one list (the kernel does not change:
  ``Serial`` and ``Repeat`` call the same layers in the same order).
- ``requirements``: for each layer, whether its output must be the full spatial covariance,
  folded back from the readout (``Layer.input_needs_full``).
- ``spatial_run``: the leading layers the fused spatial engine runs, as typed operations. A
  residual block, ``FanOut(n)``, ``parallel(b_1, ..., b_n)`` and ``FanInSum``/``FanInProd``/
  ``FanInConcat`` next to each other, becomes one ``ops.Branches`` when every branch is a
  run itself (``Identity`` branches are empty).
"""
from ..kernels.fused.program import is_readout, supported
from ..kernels.ops import Branches, Dual, is_gaussian_after
from .combinators import FanInConcat, FanInProd, FanInSum, FanOut, Identity, Parallel, Repeat, \
    Serial

__all__ = ["flatten_layers", "requirements", "spatial_run"]

_COMBINE = {FanInSum: "sum", FanInProd: "prod", FanInConcat: "concat"}


def flatten_layers(layer):
    """The layers of nested ``serial``/``repeat`` as one flat list (other layers kept whole)."""
    if isinstance(layer, Serial):
        return [l for sub in layer.layers for l in flatten_layers(sub)]
    if isinstance(layer, Repeat):
        return [l for _ in range(layer.n) for l in flatten_layers(layer.layer)]
    return [layer]


def requirements(layers, out_full):
    """Whether each layer's output must be the full spatial covariance (``out_full`` for the
    last one), folded back with ``input_needs_full``."""
    reqs = [out_full] * len(layers)
    for i in range(len(layers) - 1, 0, -1):
        reqs[i - 1] = layers[i].input_needs_full(reqs[i])
    return reqs


def spatial_run(layers, gaussian, shape):
    """``(ops, gaussian, n)``: the typed operations of the leading ``n`` layers the spatial
    engine takes on an input of canonical ``shape`` (Gaussian or not), and whether the output
    is Gaussian. A nonlinearity on a non-Gaussian input (e.g. raw inputs) ends the run, so
    that the layer raises its error; GlobalAvgPool or Flatten end it after them."""
    ops, j = [], 0
    while j < len(layers):
        if isinstance(layers[j], Identity):
            j += 1
            continue
        found = _branches(layers, j, gaussian, shape)
        if found is not None:
            op, shape = found
            step = 3
        else:
            op = layers[j].fused_op()
            if not supported(op) or (isinstance(op, Dual) and not gaussian):
                break
            shape, step = layers[j].output_shape(shape), 1
        gaussian = is_gaussian_after(op, gaussian)
        ops.append(op)
        j += step
        if is_readout(op):
            break
    return ops, gaussian, j


def _branches(layers, j, gaussian, shape):
    """``(ops.Branches, output shape)`` for ``FanOut, parallel, FanIn*`` at ``layers[j]`` whose
    branches the engine runs whole; else None (the layers then run, and raise, themselves)."""
    if j + 2 >= len(layers):
        return None
    fan_out, par, fan_in = layers[j:j + 3]
    if not (isinstance(fan_out, FanOut) and isinstance(par, Parallel) and
            type(fan_in) in _COMBINE and len(par.layers) == fan_out.num):
        return None
    branches, gs, shapes = [], [], []
    for layer in par.layers:
        sub = flatten_layers(layer)
        ops, g, n = spatial_run(sub, gaussian, shape)
        if n != len(sub) or any(is_readout(o) for o in ops):
            return None
        branches.append(tuple(ops))
        gs.append(g)
        shapes.append(_shape_after(sub, shape))
    combine = _COMBINE[type(fan_in)]
    if combine != "prod" and len(gs) > 1 and not all(gs):
        return None
    if combine == "concat" and fan_in.axis % len(shape) != len(shape) - 1:
        return None
    try:
        out = fan_in.output_shape(shapes)
    except ValueError:
        return None
    widths = tuple(s[-1] for s in shapes) if combine == "concat" else ()
    return Branches(tuple(branches), combine, widths), out


def _shape_after(layers, shape):
    for l in layers:
        shape = l.output_shape(shape)
    return shape
