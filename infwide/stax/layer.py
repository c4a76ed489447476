"""The ``Layer`` object: one definition gives the finite network and its infinite limit.

A ``Layer`` unpacks into Neural Tangents' triple ``(init_fn, apply_fn, kernel_fn)``:

    init_fn(rng, input_shape) -> (output_shape, params)   rng: int seed or numpy Generator
    apply_fn(params, x, rng=None) -> y                    finite-width forward pass
    kernel_fn(x1, x2=None, get=None)                      infinite-width kernels

Any other keyword to ``apply_fn`` or ``kernel_fn`` is a ``TypeError`` naming it.

Subclasses implement the small protocol below; the public triple, validation, ``get``
handling and the choice of spatial form live here once.

Protocol (all shapes in the canonical layout batch-first, channels-last, unless a layer
documents its own layout for ``apply``):

- ``output_shape(input_shape)``: validate and return the output shape (``-1`` = unknown batch).
- ``init(rng, input_shape)``: ``(output_shape, params)`` with ``rng`` a ``numpy.random.Generator``.
- ``apply(params, x, rng=None)``: the forward pass (``rng``: Dropout's random generator).
- ``forward(params, x, rng=None)``: ``(y, cache)`` for the backward pass.
- ``backward(params, cache, ct)``: ``(d_params, d_x)``, the hand-derived VJP of ``ct``.
- ``jvp(params, x, d_params, dx, rng=None)``: ``(y, dy)``, the hand-derived forward-mode
  derivative (Jacobian-vector product) in the direction ``(d_params, dx)``.
- ``kernel(k, out_full)``: the ``Kernel`` after this layer; ``out_full`` says whether the
  layers after it need the full spatial covariance of its output.
- ``input_needs_full(out_full)``: whether this layer needs the full spatial covariance of its
  input to produce what is asked of its output (the requirements algebra: ``serial`` folds it
  from the readout back to the inputs, so the cheapest form the whole network allows is used).
"""
import collections
import dataclasses

import numpy as np

from ..backend import as_array, result_dtype
from ..device import on_gpu, params_to_device, restore, result_kind
from ..guards import check_memory, check_result
from ..kernel import VALID_GETS, Kernel, normalize_get
from ..keywords import APPLY_KEYWORDS, reject_unknown
from ..params import promote_inputs
from ._inputs import check_inputs, inputs_to_kernel

__all__ = ["Layer", "BranchPart", "as_generator", "as_layer", "prepare_inputs", "input_shape",
           "VALID_GETS", "affine_jvp", "linear_jvp"]

_NAMEDTUPLES = {}


@dataclasses.dataclass(frozen=True)
class BranchPart:
    """A layer's role in ``FanOut(n) -> parallel(b_1, ..., b_n) -> fan-in`` for the planner:
    ``kind`` "fan_out" (``num`` copies), "parallel" (``branches``, the layers) or "fan_in"
    (``combine`` "sum", "prod" or "concat" along ``axis``)."""
    kind: str
    num: int = 0
    branches: tuple = ()
    combine: str = ""
    axis: int = -1


def as_generator(rng):
    """Accept an int seed, a ``numpy.random.Generator`` or a legacy ``RandomState``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, np.ndarray) and rng.dtype.kind == "u":  # a JAX-style uint32 key
        return np.random.default_rng(rng.astype(np.uint64).tolist())
    raise TypeError(f"init_fn: `rng` must be an int seed or a numpy.random.Generator; "
                    f"got {type(rng).__name__}.")


def as_layer(f, where):
    """The ``stax`` Layer behind ``f``: the Layer itself, or its bound ``apply_fn``."""
    if isinstance(f, Layer):
        return f
    owner = getattr(f, "__self__", None)
    if isinstance(owner, Layer) and f == owner.apply_fn:
        return owner
    raise TypeError(f"{where}: `f` must be a network built with infwide.stax (the Layer, or the "
                    f"apply_fn it unpacks into); got {f!r}. infwide has no autodiff: gradients "
                    "and empirical NTKs come from the layers' hand-derived backward passes, so "
                    "functions not built with infwide.stax cannot be differentiated.")


def prepare_inputs(x, name="x"):
    """Validate inputs as ``apply_fn`` does: arrays (or lists of arrays), integers -> float64."""
    if isinstance(x, (list, tuple)):
        return [prepare_inputs(xi, name) for xi in x]
    x = as_array(x, name)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    if x.dtype.kind != "f":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {x.dtype}.")
    return x


def input_shape(x):
    """The shape of ``x``, or the list of shapes of a list of inputs."""
    return [tuple(xi.shape) for xi in x] if isinstance(x, list) else tuple(x.shape)


def _output(k, names, as_tuple):
    if names is None:
        return k
    vals = []
    for g in names:
        v = getattr(k, g)
        if g == "ntk" and v is None:
            raise ValueError("kernel_fn: the NTK was not computed")
        vals.append(v)
    if not as_tuple:
        return vals[0]
    if names not in _NAMEDTUPLES:
        _NAMEDTUPLES[names] = collections.namedtuple("AnalyticKernel", names)
    return _NAMEDTUPLES[names](*vals)


class Layer:
    """Base class of every layer and combinator; see the module docstring."""

    name = "Layer"

    def __init__(self):
        """A layer without hyper-parameters takes none (an unknown keyword is named)."""

    # -- the NT triple -------------------------------------------------------------------
    def __iter__(self):
        return iter((self.init_fn, self.apply_fn, self.kernel_fn))

    def __getitem__(self, i):   # NT code indexes the triple: stax.serial(...)[2]
        return (self.init_fn, self.apply_fn, self.kernel_fn)[i]

    def __len__(self):
        return 3

    def __repr__(self):
        return self.name

    def init_fn(self, rng, input_shape):
        return self.init(as_generator(rng), _as_shape(input_shape))

    def apply_fn(self, params, x, rng=None, **kwargs):
        """The finite network's forward pass; ``rng`` feeds Dropout (NT's keyword)."""
        reject_unknown("apply_fn", kwargs, APPLY_KEYWORDS)
        kind = result_kind(x)   # the device policy: results come back as the input's kind
        if isinstance(x, (list, tuple)):
            x = [as_array(xi, "x") for xi in x]
        else:
            x = as_array(x, "x")
            if x.dtype.kind in "biu":
                x = x.astype(np.float64)
        params = params_to_device(params, x)
        x = promote_inputs(x, params)   # NumPy's promotion: float32 x, float64 params -> float64
        return restore(self.apply(params, x, rng=rng), kind)

    def kernel_fn(self, x1, x2=None, get=None, **kwargs):
        """Infinite-width kernels between ``x1`` and ``x2`` (``x2=None`` means ``x1``).

        ``x1`` may also be a ``Kernel`` (then ``x2`` must be None). Any other keyword is a
        ``TypeError``: NT's ``kernel_fn`` passes ``**kwargs`` on to its layers, and none of
        infwide's reads one."""
        reject_unknown("kernel_fn", kwargs)
        names, as_tuple = normalize_get(get)
        if isinstance(x1, Kernel):
            if x2 is not None:
                raise ValueError("kernel_fn: `x2` must be None when `x1` is a Kernel (the "
                                 f"Kernel already holds both inputs); got {type(x2).__name__}.")
            return _output(self.kernel_of(x1, not x1.diagonal_spatial), names, as_tuple)
        kind = result_kind(x1, x2)
        x1, x2 = check_inputs(x1, x2, *(self.input_axes() or (0, -1)))   # the one validation
        return restore(self.kernel_of_inputs(x1, x2, get), kind)

    def kernel_of_inputs(self, x1, x2, get):
        """``kernel_fn`` on inputs validated by ``check_inputs`` (``x2`` None for ``x1``):
        the input kernel in the cheapest spatial form the network allows, then ``kernel_of``.
        ``Serial`` first tries the fused engine on the raw inputs."""
        names, as_tuple = normalize_get(get)
        compute_ntk = names is None or "ntk" in names
        ba, ca = self.input_axes() or (0, -1)   # the raw inputs' layout (e.g. NCHW convs)
        out_full = _is_spatial(self.output_shape(tuple(x1.shape)))
        in_full = self.input_needs_full(out_full)
        check_memory(self, x1, x2, in_full, result_dtype(x1, x2).itemsize, compute_ntk,
                     _device_id(x1) if on_gpu(x1) else None)
        k = inputs_to_kernel(x1, x2, diagonal_spatial=not in_full, compute_ntk=compute_ntk,
                             batch_axis=ba, channel_axis=ca)
        return _output(self.kernel_of(k, out_full), names, as_tuple)

    def kernel_of(self, k, out_full):
        """This layer's ``kernel`` on the device of ``k`` (fused CUDA blocks where they apply
        on a GPU, never Numba CPU routines there), then the precision guard."""
        if on_gpu(k.nngp):
            from ._gpu_plan import serial_kernel_gpu
            out = serial_kernel_gpu(self, k, out_full)
        else:
            out = self.kernel(k, out_full=out_full)
        if not isinstance(out, list):
            check_result(self, k, out, out_full)
        return out

    # -- protocol defaults -----------------------------------------------------------------
    def output_shape(self, input_shape):
        return input_shape

    def init(self, rng, input_shape):
        return self.output_shape(input_shape), ()

    def forward(self, params, x, rng=None):
        return self.apply(params, x, rng=rng), x

    def input_needs_full(self, out_full):
        return out_full

    def fused_op(self):
        """What this layer does to a covariance, as a typed operation of ``kernels.ops``
        (``Affine``, ``Conv``, ``Dual``, ...) that the fused engines run; None (the default)
        when it can't be fused and runs its own ``kernel``."""
        return None

    def flatten(self):
        """This layer as a flat list of layers (``serial``/``repeat`` unfold; the planner)."""
        return [self]

    def branch_part(self):
        """The role of this layer in a residual block (``BranchPart``), or None."""
        return None

    def jvp(self, params, x, d_params, dx, rng=None):
        """``(y, dy)``: the forward pass and its derivative in the direction ``(d_params, dx)``
        (forward mode, by hand; used by ``infwide.linearize``)."""
        raise NotImplementedError(f"{self.name}: this layer has no forward-mode rule (jvp), so "
                                  "infwide.linearize / taylor_expand / empirical_ntk_vp_fn "
                                  "cannot differentiate it.")

    def input_axes(self):
        """``(batch_axis, channel_axis)`` of the raw inputs this layer reads; None: any layout."""
        return None

    def kernel_steps(self, k, out_full=False):
        """``(label, Kernel)`` after each inner layer in turn, computed one layer at a time
        (``guards`` replays a failed call with it to name the layer where it failed); a
        layer without inner layers has no steps."""
        return iter(())


def affine_jvp(layer, params, x, d_params, dx):
    """Forward mode of an affine layer ``y = A(W, x) + B(b)`` with ``A`` bilinear (Dense, Conv,
    ConvTranspose, ConvLocal): ``dy = A(W, dx) + A(dW, x) + B(db)``, i.e. the layer applied to
    ``dx`` without bias plus the layer with the parameters' tangents applied to ``x``."""
    W = params[0]
    return layer.apply(params, x), layer.apply((W, None), dx) + layer.apply(d_params, x)


def linear_jvp(layer, params, x, d_params, dx):
    """Forward mode of a layer linear in ``x`` without parameters (pools, Flatten, FanInSum,
    FanInConcat): ``dy = layer(dx)``."""
    return layer.apply(params, x), layer.apply(params, dx)


def _device_id(x):
    dev = getattr(x, "device", None)
    return int(getattr(dev, "id", 0) or 0)


def _as_shape(s):
    if isinstance(s, list) and s and isinstance(s[0], (tuple, list)):
        return [tuple(int(d) for d in si) for si in s]
    return tuple(int(d) for d in s)


def _is_spatial(shape):
    if isinstance(shape, list):
        return any(_is_spatial(s) for s in shape)
    return len(shape) > 2
