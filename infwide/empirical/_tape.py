"""A recorded forward pass of a ``stax`` network and the backward sensitivities of its
parametrised layers.

``serial`` and ``parallel`` are opened up; every other layer (Dense, Conv, nonlinearities,
fan-in/fan-out, ``repeat`` with its shared parameters, any layer added later) is a leaf that
keeps its input and cache. ``backward`` pushes a cotangent through the recorded network with the
layers' own hand-derived backward passes, and stores at each leaf that has parameters the
cotangent arriving at its output (its "sensitivity" ``delta = d <ct, f> / d y_leaf``).

Networks built with ``stax`` treat the examples of a batch independently, so with the one-hot
cotangent ``e_o`` on output component ``o`` of every example, the sensitivity of example ``i`` is
exactly ``d f_o(x_i) / d y_leaf(x_i)``: one backward pass per output component gives every
example's per-layer Jacobian factors.
"""
from ..backend import get_xp
from ..stax.combinators import Parallel, Serial
from ..stax.dense import Dense
from ..params import tree_leaves

__all__ = ["Node", "record", "backward"]


class Node:
    """One layer of a recorded forward pass."""

    __slots__ = ("layer", "params", "x", "cache", "children", "deltas")

    def __init__(self, layer, params, x, cache=None, children=None):
        self.layer, self.params, self.x, self.cache = layer, params, x, cache
        self.children = children
        self.deltas = []

    @property
    def has_params(self):
        return self.children is None and bool(tree_leaves(self.params))

    def leaves_with_params(self):
        if self.children is None:
            return [self] if self.has_params else []
        out = []
        for c in self.children:
            out.extend(c.leaves_with_params())
        return out


def record(layer, params, x, kwargs):
    """Forward pass of ``layer`` keeping every leaf's input and cache: ``(y, Node)``."""
    if isinstance(layer, Serial):
        children = []
        for l, p in zip(layer.layers, params):
            x, node = record(l, p, x, kwargs)
            children.append(node)
        return x, Node(layer, params, None, children=children)
    if isinstance(layer, Parallel):
        if not isinstance(x, (list, tuple)) or len(x) != len(layer.layers):
            layer.forward(params, x, **kwargs)  # raises the layer's own clear error
        outs, children = [], []
        for l, p, xi in zip(layer.layers, params, x):
            y, node = record(l, p, xi, kwargs)
            outs.append(y)
            children.append(node)
        return outs, Node(layer, params, None, children=children)
    y, cache = layer.forward(params, x, **kwargs)
    return y, Node(layer, params, x, cache=cache)


def backward(node, ct, keep):
    """Push ``ct`` back through ``node``; when ``keep``, append each parametrised leaf's
    output cotangent to its ``deltas``. Returns the cotangent of the node's input."""
    if node.children is not None and isinstance(node.layer, Serial):
        for child in reversed(node.children):
            ct = backward(child, ct, keep)
        return ct
    if node.children is not None:
        return [backward(c, g, keep) for c, g in zip(node.children, ct)]
    if keep and node.has_params:
        node.deltas.append(ct)
    if type(node.layer) is Dense:  # only the input cotangent is needed: skip d_params
        return _dense_input_cotangent(node.layer, node.params[0], node.x, ct)
    return node.layer.backward(node.params, node.cache, ct)[1]


def _dense_input_cotangent(layer, W, x, ct):
    """``d <ct, Dense(x)> / dx = w ct W^T`` (the ``d_x`` half of ``Dense.backward``)."""
    xp = get_xp(ct, W)
    w = layer._scales(x.shape[layer.channel_axis])[0]
    cm = xp.moveaxis(ct, layer.channel_axis, -1)
    return xp.moveaxis((cm @ W.T.astype(ct.dtype, copy=False)) * ct.dtype.type(w), -1,
                       layer.channel_axis)
