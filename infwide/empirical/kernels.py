"""Empirical (finite-width) NNGP and NTK of a network built with ``infwide.stax``, with
Neural Tangents' semantics (``nt.empirical_nngp_fn``, ``empirical_ntk_fn``,
``empirical_kernel_fn``), computed without autodiff.

- NNGP: the outer product of the outputs, ``f(x1) f(x2)^T``, averaged over ``trace_axes``
  and kept only on the diagonal of ``diagonal_axes``.
- NTK: ``J(x1) J(x2)^T`` with ``J = d f / d params``, summed over all parameters, with the same
  trace / diagonal reductions; computed layer by layer from forward activations and backward
  sensitivities (``_ntk_rules``), never by materialising the full Jacobian where a layer has a
  structured rule.

Shapes are "almost" ``zip(f(x1).shape, f(x2).shape)``: traced axes are absent, diagonal axes
appear once, every other axis twice (``(N1, N2)`` for outputs ``(N, K)`` traced over ``K``).
Networks with a list of outputs (ending in ``parallel``) give a list of kernels, one per output,
cross-terms ignored (as NT).
"""
import collections
import enum

import numpy as np

from ..backend import check_finite, get_xp
from ..device import params_to_device, restore, result_kind
from ..keywords import APPLY_KEYWORDS, reject_unknown
from ..params import check_params, promote_inputs
from ..stax.layer import as_generator, as_layer, input_shape, prepare_inputs
from . import _tape
from ._contract import OutputAxes
from ._ntk_rules import layer_contribution
from .batched import BatchedEmpirical

__all__ = ["empirical_nngp_fn", "empirical_ntk_fn", "empirical_kernel_fn", "EmpiricalKernel",
           "NtkImplementation", "split_rng"]

EmpiricalKernel = collections.namedtuple("EmpiricalKernel", ("nngp", "ntk"))
_VALID = ("nngp", "ntk")
_NAMEDTUPLES = {("nngp", "ntk"): EmpiricalKernel}


def _check_x(x, name, where):
    x = prepare_inputs(x, name)
    for xi in (x if isinstance(x, list) else [x]):
        if xi.ndim < 1:
            raise ValueError(f"{where}: `{name}` must have a leading batch axis; got a scalar.")
        check_finite(xi, name, where)
    return x


def _as_list(y):
    return (y, True) if isinstance(y, list) else ([y], False)


class _Empirical:
    """Shared machinery of the three empirical kernel functions."""

    def __init__(self, f, trace_axes, diagonal_axes, where):
        self.layer = as_layer(f, where)
        self.trace_axes, self.diagonal_axes, self.where = trace_axes, diagonal_axes, where

    def batched(self, **batch_args):
        """What ``infwide.batch(self, **batch_args)`` returns: this function in tiles."""
        return BatchedEmpirical(self, batch_args)

    @staticmethod
    def named(names, values):
        return _named(names, values)

    def finish(self, names, as_tuple, values):
        """The user's return value from the arrays ``values`` of ``names``."""
        return _named(names, values) if as_tuple else values[0]

    def plan(self, y1, y2):
        plan = OutputAxes(y1.ndim, self.trace_axes, self.diagonal_axes, self.where)
        plan.check_shapes(y1.shape, y2.shape)
        return plan

    def inputs(self, x1, x2, params):
        x1 = _check_x(x1, "x1", self.where)
        x2 = None if x2 is None else _check_x(x2, "x2", self.where)
        check_params(self.layer, params, input_shape(x1), self.where)
        params = params_to_device(params, x1)
        x2 = None if x2 is None else promote_inputs(x2, params)
        return promote_inputs(x1, params), x2, params

    def nngp(self, y1s, y2s):
        out = []
        for y1, y2 in zip(y1s, y2s):
            plan = self.plan(y1, y2)
            k = get_xp(y1).einsum(plan.outer_subscripts(), y1, y2)
            out.append(k / k.dtype.type(plan.trace_size(y1.shape)))
        return out

    def ntk(self, tapes, ys, is_list, kwargs):
        (t1, t2), (y1s, y2s) = tapes, ys
        return [self._ntk_branch(k, t1, t2, y1s, y2s, is_list, kwargs) for k in range(len(y1s))]

    def _ntk_branch(self, k, t1, t2, y1s, y2s, is_list, kwargs):
        y1, y2 = y1s[k], y2s[k]
        plan = self.plan(y1, y2)
        shared = plan.only_diagonal_pairs()
        _sensitivities(t1, y1s, k, is_list)
        if t2 is not t1:
            _sensitivities(t2, y2s, k, is_list)
        xp, rest = get_xp(y1), tuple(y1.shape[1:])
        n_rest = int(np.prod(rest, dtype=np.int64))
        shape = (y1.shape[0], y2.shape[0], n_rest) if shared else \
            (y1.shape[0], n_rest, y2.shape[0], n_rest)
        pair = xp.zeros(shape, dtype=y1.dtype)
        for n1, n2 in zip(t1.leaves_with_params(), t2.leaves_with_params()):
            pair += layer_contribution(n1, n2 if t2 is not t1 else n1, shared, kwargs)
        pair = pair.reshape((y1.shape[0], y2.shape[0]) + rest if shared else
                            (y1.shape[0],) + rest + (y2.shape[0],) + rest)
        out = xp.einsum(plan.pair_subscripts(shared), pair)
        return out / out.dtype.type(plan.trace_size(y1.shape))

    def compute(self, x1, x2, params, names, kwargs):
        """``{name: kernel}`` for the requested ``names``, one forward pass per input batch."""
        x1, x2, params = self.inputs(x1, x2, params)
        want_ntk = "ntk" in names
        kw1, kw2 = split_rng(kwargs, x2 is None)
        if want_ntk:
            y1, t1 = _tape.record(self.layer, params, x1, kw1)
            y2, t2 = (y1, t1) if x2 is None else _tape.record(self.layer, params, x2, kw2)
        else:
            y1 = self.layer.apply(params, x1, **kw1)
            y2 = y1 if x2 is None else self.layer.apply(params, x2, **kw2)
        (y1s, is_list), (y2s, _) = _as_list(y1), _as_list(y2)
        for y in y1s + y2s:
            check_finite(y, "f(x)", f"{self.where} (the network output overflowed)")
        out = {}
        if "nngp" in names:
            out["nngp"] = self.nngp(y1s, y2s)
        if want_ntk:
            out["ntk"] = self.ntk((t1, t2), (y1s, y2s), is_list, kwargs)
        return {k: (v if is_list else v[0]) for k, v in out.items()}


def split_rng(kwargs, same):
    """As NT: an ``rng`` keyword gives x1 and x2 independent randomness (e.g. Dropout masks)
    unless ``x2`` is ``None`` (one forward pass)."""
    if same or kwargs.get("rng") is None:
        return kwargs, kwargs
    seeds = as_generator(kwargs["rng"]).integers(0, 2**63 - 1, size=2)
    return dict(kwargs, rng=int(seeds[0])), dict(kwargs, rng=int(seeds[1]))


def _sensitivities(tape, ys, k, is_list):
    """Fill every parametrised leaf's ``deltas`` with one backward pass per component of
    output ``k`` (a one-hot cotangent on that component for every example)."""
    for node in tape.leaves_with_params():
        node.deltas = []
    y = ys[k]
    xp = get_xp(y)
    rest = y.shape[1:]
    for o in range(int(np.prod(rest, dtype=np.int64))):
        ct = xp.zeros_like(y)
        ct[(slice(None),) + np.unravel_index(o, rest)] = 1
        if is_list:
            ct = [ct if j == k else xp.zeros_like(yj) for j, yj in enumerate(ys)]
        _tape.backward(tape, ct, keep=True)


def _normalize_get(get, where):
    if get is None:
        return ("nngp", "ntk"), True
    names = (get,) if isinstance(get, str) else tuple(get)
    for g in names:
        if g not in _VALID:
            raise ValueError(f"{where}: unknown `get` {g!r}; expected 'nngp', 'ntk', a tuple of "
                             "them, or None for both.")
    return names, not isinstance(get, str)


def _named(names, values):
    if names not in _NAMEDTUPLES:
        _NAMEDTUPLES[names] = collections.namedtuple("EmpiricalKernel", names)
    return _NAMEDTUPLES[names](*values)


class _KernelFn(_Empirical):
    """``kernel_fn(x1, x2, get, params, **apply_fn_kwargs)``: see ``empirical_kernel_fn``."""

    names = _VALID

    def __call__(self, x1, x2=None, get=None, params=None, **apply_fn_kwargs):
        reject_unknown(self.where, apply_fn_kwargs, APPLY_KEYWORDS)
        names, as_tuple = self.parse_get(get)
        if params is None:
            raise TypeError(f"{self.where}: `params` is required (the parameters from the "
                            "network's init_fn).")
        kind = result_kind(x1, x2)  # the device policy: results as the input's kind of array
        out = restore(self.compute(x1, x2, params, names, apply_fn_kwargs), kind)
        values = [out[g] for g in names]
        if isinstance(values[0], list):  # one kernel per network output
            return [self.finish(names, as_tuple, v) for v in zip(*values)]
        return self.finish(names, as_tuple, values)

    def parse_get(self, get):
        return _normalize_get(get, self.where)

    def parse_call(self, args, kwargs):
        """``(get, params, apply_fn_kwargs)`` from the arguments after ``x1, x2``."""
        return _bind(self.where, ("get", "params"), args, kwargs)


class _SingleFn(_Empirical):
    """``fn(x1, x2, params, **apply_fn_kwargs)`` for one kernel (``'nngp'`` or ``'ntk'``)."""

    def __init__(self, f, trace_axes, diagonal_axes, where, name):
        super().__init__(f, trace_axes, diagonal_axes, where)
        self.name = name
        self.names = (name,)

    def __call__(self, x1, x2, params, **apply_fn_kwargs):
        reject_unknown(self.where, apply_fn_kwargs, APPLY_KEYWORDS)
        out = self.compute(x1, x2, params, (self.name,), apply_fn_kwargs)[self.name]
        return restore(out, result_kind(x1, x2))

    def parse_get(self, get):
        return self.names, False

    def parse_call(self, args, kwargs):
        """``(None, params, apply_fn_kwargs)`` from the arguments after ``x1, x2``."""
        return (None,) + _bind(self.where, ("params",), args, kwargs)[1:]


def _bind(where, names, args, kwargs):
    """Bind positional ``args`` and keyword ``kwargs`` to ``names`` (as Python would), the
    rest being the network's apply_fn keywords: ``(get or None, params, apply_fn_kwargs)``."""
    if len(args) > len(names):
        raise TypeError(f"{where}: takes x1, x2, {', '.join(names)} positionally; got "
                        f"{2 + len(args)} positional arguments.")
    bound, kwargs = dict(zip(names, args)), dict(kwargs)
    for n in names:
        if n in kwargs:
            if n in bound:
                raise TypeError(f"{where}: got multiple values for argument {n!r}.")
            bound[n] = kwargs.pop(n)
    if bound.get("params") is None:
        raise TypeError(f"{where}: `params` is required (the parameters from the network's "
                        "init_fn).")
    reject_unknown(where, kwargs, APPLY_KEYWORDS)
    return bound.get("get"), bound["params"], kwargs


class NtkImplementation(enum.IntEnum):
    """NT's choice of finite-width NTK method (``nt.NtkImplementation``), same names and values.

    infwide has one method for all four: each layer's contribution from its forward
    activations and hand-derived backward sensitivities (``Dense``: Gram matrices of those,
    NT's "structured derivatives"; other layers: their Jacobian rows). The choice is accepted
    so that NT code runs unchanged; the result is the same NTK, as in NT.
    """
    AUTO = 0
    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED_DERIVATIVES = 3


def _check_implementation(implementation, where):
    if implementation is None:
        return
    try:
        NtkImplementation(implementation)
    except ValueError:
        raise ValueError(f"{where}: `implementation` must be an infwide.NtkImplementation (or "
                         f"its value 0-3) as in NT; got {implementation!r}.") from None


def empirical_nngp_fn(f, trace_axes=(-1,), diagonal_axes=()):
    """A function ``nngp_fn(x1, x2, params, **apply_fn_kwargs)`` computing one sample of the
    empirical NNGP ``f(x1) f(x2)^T`` of a finite network (Neural Tangents' semantics).

    Parameters
    ----------
    f : a network built with ``infwide.stax`` (the Layer, or its ``apply_fn``).
    trace_axes : output axes over which the kernel is traced (averaged): one pair of axes per
        traced output axis disappears. Default ``(-1,)``, the channel / logit axis.
    diagonal_axes : output axes on which only the diagonal of the pair is kept (one axis).

    ``x2=None`` means ``x2 = x1``. The kernel has shape "almost" ``zip(f(x1).shape,
    f(x2).shape)``: traced axes absent, diagonal axes once, the others twice.
    """
    return _SingleFn(f, trace_axes, diagonal_axes, "empirical_nngp_fn", "nngp")


def empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None,
                     implementation=NtkImplementation.JACOBIAN_CONTRACTION):
    """A function ``ntk_fn(x1, x2, params, **apply_fn_kwargs)`` computing the empirical NTK
    ``sum_p d f(x1)/dp  d f(x2)/dp`` of a finite network (Neural Tangents' semantics).

    Computed from each layer's forward activations and hand-derived backward sensitivities
    (one backward pass of the network per output component, e.g. one per logit), and for
    ``Dense`` layers from Gram matrices of those, without building Jacobians; other layers
    contribute their Jacobian rows. ``trace_axes`` / ``diagonal_axes`` as in
    ``empirical_nngp_fn``. ``vmap_axes`` and ``implementation`` are accepted for compatibility
    with Neural Tangents and do not change the result (``implementation``: an
    :class:`NtkImplementation` or its value, checked): ``stax`` networks treat examples
    independently, which is what this computation uses.
    """
    _check_implementation(implementation, "empirical_ntk_fn")
    return _SingleFn(f, trace_axes, diagonal_axes, "empirical_ntk_fn", "ntk")


def empirical_kernel_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None,
                        implementation=NtkImplementation.JACOBIAN_CONTRACTION):
    """A function ``kernel_fn(x1, x2, get, params, **apply_fn_kwargs)`` returning empirical
    NNGP and/or NTK samples of a finite network (Neural Tangents' semantics).

    ``get=None`` returns ``EmpiricalKernel(nngp, ntk)``; a string returns that array; a tuple
    returns a namedtuple with those fields in that order. ``x2=None`` means ``x2 = x1`` (and
    shares one forward pass). See ``empirical_nngp_fn`` and ``empirical_ntk_fn``.

    Example
    -------
    >>> import numpy as np
    >>> from infwide import stax, empirical_kernel_fn
    >>> init_fn, apply_fn, _ = stax.serial(stax.Dense(256), stax.Relu(), stax.Dense(1))
    >>> _, params = init_fn(0, (4, 3))
    >>> k = empirical_kernel_fn(apply_fn)(np.ones((4, 3)), None, None, params)
    >>> k.nngp.shape, k.ntk.shape
    ((4, 4), (4, 4))
    """
    _check_implementation(implementation, "empirical_kernel_fn")
    return _KernelFn(f, trace_axes, diagonal_axes, "empirical_kernel_fn")
