"""Ensembles of independently initialised finite networks, evaluated together.

Two engines give the same numbers (tests check it):

- ``StackedEngine``: the members' parameters are stacked on a leading axis and every layer runs
  once for the whole ensemble: one batched matmul per ``Dense`` layer (``(M, N, n_in) @ (M, n_in,
  n_out)``), and the layers' own forward/backward for layers that act elementwise or along
  negative axes (nonlinearities, ``FanOut``, ``FanInSum``, ``FanInProd``, ``FanInConcat``,
  ``Identity``), which accept the extra leading axis as it is. For the wide, shallow networks
  of the demo this replaces M small matmuls per layer by one, and the parameter update is done
  in place on one array per parameter (so the Python overhead no longer grows with M).
- ``LoopEngine``: any other network (convolutions, pooling, normalisation, ...): the members run
  one after the other through the layers' own forward and backward passes.
"""
import numpy as np

from ..backend import get_xp
from ..stax.combinators import (FanInConcat, FanInProd, FanInSum, FanOut, Identity, Parallel,
                                Serial)
from ..stax.dense import Dense
from ..stax.elementwise import Elementwise
from ..stax.layer import as_generator
from ..params import tree_leaves, tree_map, tree_stack

__all__ = ["init_ensemble", "make_engine", "StackedEngine", "LoopEngine"]

_SHAPE_AGNOSTIC = (Elementwise, FanOut, FanInSum, FanInProd, Identity)


def init_ensemble(init_fn, key, input_shape, n_members):
    """Parameters of ``n_members`` independently initialised networks (a list of trees).

    ``init_fn`` is the network's ``init_fn`` (or the Layer); ``key`` an int seed or a
    ``numpy.random.Generator``; member ``m`` uses the ``m``-th child seed of ``key``.
    """
    if int(n_members) != n_members or n_members < 1:
        raise ValueError(f"init_ensemble: `n_members` must be a positive integer, got {n_members!r}.")
    init_fn = getattr(init_fn, "init_fn", init_fn)
    rng = as_generator(key)
    seeds = rng.integers(0, 2**63 - 1, size=int(n_members))
    return [init_fn(np.random.default_rng(s), input_shape)[1] for s in seeds]


def stackable(layer):
    """Whether ``StackedEngine`` can run ``layer`` with a leading member axis."""
    if isinstance(layer, (Serial, Parallel)):
        return all(stackable(l) for l in layer.layers)
    if type(layer) is Dense:
        return layer.channel_axis < 0
    if isinstance(layer, FanInConcat):
        return layer.axis < 0
    return isinstance(layer, _SHAPE_AGNOSTIC)


# -- Dense with stacked parameters ----------------------------------------------------------
def _dense_forward(layer, params, x):
    W, b = params
    xp = get_xp(x, W)
    xm = xp.moveaxis(x, layer.channel_axis, -1)
    w, bs = layer._scales(xm.shape[-1])
    flat = xm.reshape(xm.shape[0], -1, xm.shape[-1])
    out = (flat @ W.astype(x.dtype, copy=False)) * x.dtype.type(w)
    out = out.reshape(xm.shape[:-1] + (W.shape[-1],))
    if b is not None:
        out = out + (b * bs).astype(x.dtype, copy=False)
    return xp.moveaxis(out, -1, layer.channel_axis), x


def _dense_backward(layer, params, x, ct):
    W, b = params
    xp = get_xp(x, W)
    xm = xp.moveaxis(x, layer.channel_axis, -1)
    cm = xp.moveaxis(ct, layer.channel_axis, -1)
    w, bs = layer._scales(xm.shape[-1])
    xf = xm.reshape(xm.shape[0], -1, xm.shape[-1])
    cf = cm.reshape(cm.shape[0], -1, cm.shape[-1])
    dW = (xp.swapaxes(xf, 1, 2) @ cf) * w
    db = None
    if b is not None:
        db = (cm.sum(axis=tuple(range(1, cm.ndim - 1)), keepdims=True) * bs)
        db = db.reshape(b.shape)
    dx = (cf @ xp.swapaxes(W, 1, 2).astype(ct.dtype, copy=False)) * w
    dx = xp.moveaxis(dx.reshape(cm.shape[:-1] + (W.shape[1],)), -1, layer.channel_axis)
    return (dW, db), dx


def _stacked_forward(layer, params, x):
    if isinstance(layer, Serial):
        caches = []
        for l, p in zip(layer.layers, params):
            x, c = _stacked_forward(l, p, x)
            caches.append(c)
        return x, caches
    if isinstance(layer, Parallel):
        out = [_stacked_forward(l, p, xi) for l, p, xi in zip(layer.layers, params, x)]
        return [o[0] for o in out], [o[1] for o in out]
    if type(layer) is Dense:
        return _dense_forward(layer, params, x)
    return layer.forward(params, x)


def _stacked_backward(layer, params, cache, ct):
    if isinstance(layer, Serial):
        grads = [None] * len(layer.layers)
        for i in reversed(range(len(layer.layers))):
            grads[i], ct = _stacked_backward(layer.layers[i], params[i], cache[i], ct)
        return tuple(grads), ct
    if isinstance(layer, Parallel):
        out = [_stacked_backward(l, p, c, g)
               for l, p, c, g in zip(layer.layers, params, cache, ct)]
        return tuple(o[0] for o in out), [o[1] for o in out]
    if type(layer) is Dense:
        return _dense_backward(layer, params, cache, ct)
    return layer.backward(params, cache, ct)


def _broadcast_members(x, m):
    if isinstance(x, list):
        return [_broadcast_members(xi, m) for xi in x]
    return get_xp(x).broadcast_to(x, (m,) + tuple(x.shape))


class StackedEngine:
    """The whole ensemble in one pass per layer; parameters stacked on a leading axis."""

    def __init__(self, layer, members, dtype):
        self.layer, self.n = layer, len(members)
        self.params = tree_stack([tree_map(lambda a: a.astype(dtype), p) for p in members],
                                 get_xp(*tree_leaves(members[0])))

    def forward(self, x):
        """Outputs ``(M, N, ...)`` and the cache for ``backward``."""
        return _stacked_forward(self.layer, self.params, _broadcast_members(x, self.n))

    def backward(self, cache, ct):
        """Gradients (stacked like the parameters) for cotangents ``ct`` of shape ``(M, N, ...)``."""
        return _stacked_backward(self.layer, self.params, cache, ct)[0]

    def apply(self, x):
        return self.forward(x)[0]

    def members(self):
        return [tree_map(lambda a: a[m].copy(), self.params) for m in range(self.n)]


class LoopEngine:
    """Members one after the other through the layers' own forward and backward passes."""

    def __init__(self, layer, members, dtype):
        self.layer, self.n = layer, len(members)
        self.params = [tree_map(lambda a: a.astype(dtype), p) for p in members]

    def forward(self, x):
        out = [self.layer.forward(p, x) for p in self.params]
        xp = get_xp(out[0][0])
        return xp.stack([o[0] for o in out]), [o[1] for o in out]

    def backward(self, cache, ct):
        return [self.layer.backward(p, c, ct[m])[0]
                for m, (p, c) in enumerate(zip(self.params, cache))]

    def apply(self, x):
        xp = None
        outs = [self.layer.apply(p, x) for p in self.params]
        xp = get_xp(outs[0])
        return xp.stack(outs)

    def members(self):
        return [tree_map(lambda a: a.copy(), p) for p in self.params]


def make_engine(layer, members, dtype, engine="auto"):
    """``StackedEngine`` when the network allows it (``engine='auto'``), else ``LoopEngine``."""
    if engine not in ("auto", "stacked", "loop"):
        raise ValueError(f"train: `engine` must be 'auto', 'stacked' or 'loop', got {engine!r}.")
    can_stack = stackable(layer)
    if engine == "stacked" and not can_stack:
        raise ValueError(f"train: engine='stacked' supports networks of Dense (channel_axis < 0), "
                         f"nonlinearities and fan-in/fan-out combinators; {layer.name} has other "
                         "layers. Use engine='auto' or 'loop'.")
    if can_stack and engine != "loop":
        return StackedEngine(layer, members, dtype)
    return LoopEngine(layer, members, dtype)
