"""The ``Layer`` object: one definition gives the finite network and its infinite limit.

A ``Layer`` unpacks into Neural Tangents' triple ``(init_fn, apply_fn, kernel_fn)``:

    init_fn(rng, input_shape) -> (output_shape, params)   rng: int seed or numpy Generator
    apply_fn(params, x, **kwargs) -> y                    finite-width forward pass
    kernel_fn(x1, x2=None, get=None, **kwargs)            infinite-width kernels

Subclasses implement the small protocol below; the public triple, validation, ``get``
handling and the choice of spatial form live here once.

Protocol (all shapes in the canonical layout batch-first, channels-last, unless a layer
documents its own layout for ``apply``):

- ``output_shape(input_shape)``: validate and return the output shape (``-1`` = unknown batch).
- ``init(rng, input_shape)``: ``(output_shape, params)`` with ``rng`` a ``numpy.random.Generator``.
- ``apply(params, x, **kwargs)``: the forward pass.
- ``forward(params, x, **kwargs)``: ``(y, cache)`` for the backward pass.
- ``backward(params, cache, ct)``: ``(d_params, d_x)``, the hand-derived VJP of ``ct``.
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
from ..kernel import Kernel
from ._inputs import canonical_inputs, inputs_to_kernel, same_batch_as_none

__all__ = ["Layer", "BranchPart", "as_generator", "VALID_GETS"]

VALID_GETS = ("nngp", "ntk", "cov1", "cov2")
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


def _normalize_get(get, where="kernel_fn"):
    """Return (names, as_tuple) for a ``get`` argument, validating it (``where`` names the
    caller in the error)."""
    if get is None:
        return None, False
    names = (get,) if isinstance(get, str) else tuple(get)
    for g in names:
        if g not in VALID_GETS:
            raise ValueError(f"{where}: unknown `get` {g!r}; expected one of {VALID_GETS}, "
                             "a tuple of them, or None for the whole Kernel.")
    return names, not isinstance(get, str)


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

    def apply_fn(self, params, x, **kwargs):
        kind = result_kind(x)   # the device policy: results come back as the input's kind
        if isinstance(x, (list, tuple)):
            x = [as_array(xi, "x") for xi in x]
        else:
            x = as_array(x, "x")
            if x.dtype.kind in "biu":
                x = x.astype(np.float64)
        params = params_to_device(params, x)
        return restore(self.apply(params, x, **kwargs), kind)

    def kernel_fn(self, x1, x2=None, get=None, **kwargs):
        """Infinite-width kernels between ``x1`` and ``x2`` (``x2=None`` means ``x1``)."""
        names, as_tuple = _normalize_get(get)
        compute_ntk = names is None or "ntk" in names
        if isinstance(x1, Kernel):
            k = x1
            out_full = not k.diagonal_spatial
        else:
            x2 = same_batch_as_none(x1, x2)
            ba, ca = self.input_axes() or (0, -1)   # the raw inputs' layout (e.g. NCHW convs)
            canonical_inputs(x1, "x1", ba, ca)
            out_shape = self.output_shape(tuple(as_array(x1, "x1").shape))
            out_full = _is_spatial(out_shape)
            in_full = self.input_needs_full(out_full)
            x1a = as_array(x1, "x1")
            check_memory(self, x1a, None if x2 is None else as_array(x2, "x2"), in_full,
                         result_dtype(x1a).itemsize, compute_ntk,
                         _device_id(x1a) if on_gpu(x1a) else None)
            k = inputs_to_kernel(x1, x2, diagonal_spatial=not in_full, compute_ntk=compute_ntk,
                                 batch_axis=ba, channel_axis=ca)
        k_in = k
        if on_gpu(k.nngp):   # fused CUDA blocks where they apply; never Numba CPU routines
            from ._gpu_plan import serial_kernel_gpu
            k = serial_kernel_gpu(self, k, out_full, **kwargs)
        else:
            k = self.kernel(k, out_full=out_full, **kwargs)
        if not isinstance(k, list):
            check_result(self, k_in, k, _one_layer_kernel)
        kind = "numpy" if isinstance(x1, Kernel) else result_kind(x1, x2)
        return restore(_output(k, names, as_tuple), kind)

    # -- protocol defaults -----------------------------------------------------------------
    def output_shape(self, input_shape):
        return input_shape

    def init(self, rng, input_shape):
        return self.output_shape(input_shape), ()

    def forward(self, params, x, **kwargs):
        return self.apply(params, x, **kwargs), x

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

    def input_axes(self):
        """``(batch_axis, channel_axis)`` of the raw inputs this layer reads; None: any layout."""
        return None


def _one_layer_kernel(layer, k, out_full):
    return layer.kernel(k, out_full=out_full)


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
