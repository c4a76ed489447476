"""The plan of a network, made once and run by every device: its flat layer list, the spatial
form each layer needs, and the typed operations (``kernels.ops``) of the runs the fused
engines take. It sits between the layers (which describe themselves: ``flatten``,
``fused_op``, ``branch_part``, ``input_needs_full``) and the runners (``_fusion`` on the CPU,
``_gpu_plan`` on a GPU), and imports neither.

Requirements (which spatial form, as in Neural Tangents' requirements algebra): each layer is
a map ``Needs`` from "the full covariance of my output is needed" to "the full covariance of
my input is needed". Layers in series *compose* (``a >> b``: ``a`` first, associative, with
``IDENTITY`` as unit); branches side by side *combine* (``a | b``: either needs it;
commutative, associative, idempotent). ``requirements`` folds a flat list once, from the
readout back to the inputs, so the cheapest form the whole network allows is used.
"""
import dataclasses

from ..backend import get_xp
from ..kernels.forms import full_to_diagonal
from ..kernels.fused.program import is_readout, supported
from ..kernels.ops import Branches, Dual, is_gaussian_after

__all__ = ["Needs", "IDENTITY", "needs_of", "chain_needs", "flatten_layers", "requirements",
           "match_form", "Plan", "make_plan", "spatial_run"]


@dataclasses.dataclass(frozen=True)
class Needs:
    """Whether the input's full spatial covariance is needed when the output's diagonal only
    (``diag``) or its full covariance (``full``) is needed."""
    diag: bool
    full: bool

    def __call__(self, out_full):
        return self.full if out_full else self.diag

    def __rshift__(self, later):
        """``self`` then ``later``: what the composition needs of its input."""
        return Needs(self(later.diag), self(later.full))

    def __or__(self, other):
        """Side by side: the input is needed in full when either branch needs it."""
        return Needs(self.diag or other.diag, self.full or other.full)


#: A layer that needs of its input what is needed of its output (Dense, Conv, nonlinearities).
IDENTITY = Needs(False, True)


def needs_of(layer):
    """``Needs`` of one layer, from its ``input_needs_full``."""
    return Needs(bool(layer.input_needs_full(False)), bool(layer.input_needs_full(True)))


def chain_needs(layers):
    """``Needs`` of layers in series: ``l_1 >> l_2 >> ... >> l_n``."""
    out = IDENTITY
    for l in layers:
        out = out >> needs_of(l)
    return out


def flatten_layers(layer):
    """The layers of nested ``serial``/``repeat`` as one flat list (other layers kept whole,
    ``Identity`` dropped): the kernel does not change, the same layers run in the same
    order."""
    return list(layer.flatten())


def requirements(layers, out_full):
    """Whether each layer's output must be the full spatial covariance (``out_full`` for the
    last one): ``reqs[i] = (l_{i+1} >> ... >> l_n)(out_full)``."""
    reqs = [bool(out_full)] * len(layers)
    for i in range(len(layers) - 1, 0, -1):
        reqs[i - 1] = needs_of(layers[i])(reqs[i])
    return reqs


def match_form(k, need_full, layer):
    """Give ``layer`` the spatial form it needs: full -> diagonal is a cheap view."""
    if isinstance(k, list):
        return [match_form(ki, need_full, layer) for ki in k]
    if k.n_spatial == 0 or k.diagonal_spatial != bool(need_full):
        if k.n_spatial > 0 and need_full and k.diagonal_spatial:
            raise ValueError(f"{layer.name}: needs the full spatial covariance of its input, "
                             "but an earlier layer kept only its diagonal; compute the kernel "
                             "from the inputs (not from a Kernel built for another network).")
        if k.n_spatial > 0 and not need_full and not k.diagonal_spatial:
            xp = get_xp(k.nngp)
            return k.map_covariances(lambda m, nb: full_to_diagonal(xp, m, nb),
                                     diagonal_spatial=True)
    return k


@dataclasses.dataclass(frozen=True)
class Plan:
    """A network flattened once: its layers, whether each one's output must be full, and each
    one's typed operation (None: the layer runs its own ``kernel``)."""
    layers: tuple
    reqs: tuple
    ops: tuple

    def needs_full_input(self, i):
        """Whether layer ``i`` needs the full covariance of its input."""
        return needs_of(self.layers[i])(self.reqs[i])


def make_plan(layer, out_full):
    """The ``Plan`` of ``layer`` whose output must be full (``out_full``) or diagonal."""
    layers = tuple(flatten_layers(layer))
    return Plan(layers, tuple(requirements(layers, out_full)),
                tuple(l.fused_op() for l in layers))


def spatial_run(layers, gaussian, shape):
    """``(ops, gaussian, n)``: the typed operations of the leading ``n`` layers the spatial
    engine takes on an input of canonical ``shape`` (Gaussian or not), and whether the output
    is Gaussian. ``FanOut(n)``, ``parallel(b_1, ..., b_n)`` and a fan-in next to each other
    become one ``ops.Branches`` when every branch is a run itself (``Identity`` flattens to
    nothing: an empty branch). A
    nonlinearity on a non-Gaussian input (e.g. raw inputs) ends the run, so that the layer
    raises its error; GlobalAvgPool or Flatten end it after them."""
    ops, j = [], 0
    while j < len(layers):
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


def _part(layer, kind):
    part = layer.branch_part()
    return part if part is not None and part.kind == kind else None


def _branches(layers, j, gaussian, shape):
    """``(ops.Branches, output shape)`` for ``FanOut, parallel, FanIn*`` at ``layers[j]`` whose
    branches the engine runs whole; else None (the layers then run, and raise, themselves)."""
    if j + 2 >= len(layers):
        return None
    fan_out, par, fan_in = (_part(layers[j], "fan_out"), _part(layers[j + 1], "parallel"),
                            _part(layers[j + 2], "fan_in"))
    if fan_out is None or par is None or fan_in is None or len(par.branches) != fan_out.num:
        return None
    branches, gs, shapes = [], [], []
    for layer in par.branches:
        sub = flatten_layers(layer)
        ops, g, n = spatial_run(sub, gaussian, shape)
        if n != len(sub) or any(is_readout(o) for o in ops):
            return None
        branches.append(tuple(ops))
        gs.append(g)
        shapes.append(_shape_after(sub, shape))
    if fan_in.combine != "prod" and len(gs) > 1 and not all(gs):
        return None
    if fan_in.combine == "concat" and fan_in.axis % len(shape) != len(shape) - 1:
        return None
    try:
        out = layers[j + 2].output_shape(shapes)
    except ValueError:
        return None
    widths = tuple(s[-1] for s in shapes) if fan_in.combine == "concat" else ()
    return Branches(tuple(branches), fan_in.combine, widths), out


def _shape_after(layers, shape):
    for l in layers:
        shape = l.output_shape(shape)
    return shape
