"""Gradients of finite ``stax`` networks without autodiff: each layer's hand-derived backward
pass (``Layer.backward``), chained by the combinators.

``vjp(f, params, x)`` is the vector-Jacobian product of the network at ``(params, x)``;
``value_and_grad(f, loss)`` and ``grad(f, loss)`` wrap it with a loss whose gradient with
respect to the outputs is known (:mod:`infwide.losses`: ``'mse'``, ``'cross_entropy'``, a
``Loss(fn, grad)``, a pair ``(fn, grad)``; a plain function by finite differences).
"""
import numpy as np

from ..device import params_to_device
from ..keywords import APPLY_KEYWORDS, reject_unknown
from ..losses import as_loss, cross_entropy, mse
from ..params import check_params, promote_inputs
from ..stax.layer import as_layer, input_shape, prepare_inputs

__all__ = ["vjp", "value_and_grad", "grad", "mse_loss", "cross_entropy_loss"]


def vjp(f, params, x, check=True, **kwargs):
    """Forward pass and its vector-Jacobian product, from the layers' backward passes.

    Parameters
    ----------
    f : Layer or its ``apply_fn``
        A network built with ``infwide.stax``.
    params : the parameter tree from ``init_fn``.
    x : inputs (batch first), as for ``apply_fn``.
    check : bool
        Validate that ``params`` fit the network (structure, shapes, finite values).
    **kwargs : passed to the layers' forward pass (as to ``apply_fn``).

    Returns
    -------
    (y, vjp_fn) with ``y = apply_fn(params, x)`` and ``vjp_fn(ct) -> (d_params, d_x)``: for a
    cotangent ``ct`` shaped like ``y``, ``d_params = sum_o ct_o dy_o/dparams`` (a tree shaped
    like ``params``, ``None`` where a parameter is absent) and ``d_x = sum_o ct_o dy_o/dx``.

    Example
    -------
    >>> import numpy as np
    >>> from infwide import stax, vjp
    >>> net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
    >>> _, params = net.init_fn(0, (3, 2))
    >>> y, vjp_fn = vjp(net, params, np.ones((3, 2)))
    >>> d_params, d_x = vjp_fn(np.ones_like(y))
    >>> d_params[0][0].shape, d_x.shape
    ((2, 8), (3, 2))
    """
    reject_unknown("vjp", kwargs, APPLY_KEYWORDS)
    layer = as_layer(f, "vjp")
    x = prepare_inputs(x)
    if check:
        check_params(layer, params, input_shape(x), "vjp")
    params = params_to_device(params, x)
    x = promote_inputs(x, params)
    y, cache = layer.forward(params, x, **kwargs)
    return y, _VJP(layer, params, cache, y)


class _VJP:
    """The backward half of ``vjp``: callable on a cotangent shaped like the output."""

    def __init__(self, layer, params, cache, y):
        self.layer, self.params, self.cache = layer, params, cache
        self.shape = [tuple(a.shape) for a in y] if isinstance(y, list) else tuple(y.shape)

    def __call__(self, ct):
        got = [tuple(a.shape) for a in ct] if isinstance(ct, list) else tuple(np.shape(ct))
        if got != self.shape:
            raise ValueError(f"vjp_fn: the cotangent must have the output's shape {self.shape}, "
                             f"got {got}.")
        return self.layer.backward(self.params, self.cache, ct)


# The losses are infwide.losses' (one protocol, NT's normalisations), under training's names.
mse_loss = mse
cross_entropy_loss = cross_entropy


class _ValueAndGrad:
    """``fn(params, x, y, **kwargs) -> (loss value, d loss / d params)``."""

    def __init__(self, f, loss, where):
        self.layer = as_layer(f, where)
        self.loss = as_loss(loss, where)
        self.where = where

    def __call__(self, params, x, y, **kwargs):
        fx, back, y = self._forward(params, x, y, kwargs)
        return float(self.loss(fx, y)), back(self._d_fx(fx, y))[0]

    def _forward(self, params, x, y, kwargs):
        fx, back = vjp(self.layer, params, x, **kwargs)
        y = prepare_inputs(y, "y")
        if tuple(y.shape) != tuple(fx.shape):
            raise ValueError(f"{self.where}: targets `y` must have the network output's shape "
                             f"{tuple(fx.shape)}, got {tuple(y.shape)}.")
        return fx, back, y

    def _d_fx(self, fx, y):
        d_fx = self.loss.grad(fx, y)
        if tuple(d_fx.shape) != tuple(fx.shape):
            raise ValueError(f"{self.where}: the loss gradient must have the output's shape "
                             f"{tuple(fx.shape)}, got {tuple(d_fx.shape)}.")
        return d_fx.astype(fx.dtype, copy=False)


def value_and_grad(f, loss="mse"):
    """``fn(params, x, y, **kwargs) -> (loss, d_params)`` for a ``stax`` network ``f``.

    ``loss`` is a loss of :mod:`infwide.losses`' protocol, shared with
    ``predict.gradient_descent``: ``'mse'`` (NT's ``mean((f - y)**2) / 2``),
    ``'cross_entropy'`` (NT's ``-mean(log_softmax(f) * y)``), ``predict.mse`` /
    ``predict.cross_entropy``, ``predict.Loss(fn, grad)``, a pair ``(fn, grad)``, or a plain
    ``fn(fx, y) -> float`` (differentiated in ``fx`` by finite differences, with a warning).
    Gradients in the parameters come from the layers' hand-derived backward passes.
    """
    return _ValueAndGrad(f, loss, "value_and_grad")


class _Grad(_ValueAndGrad):
    def __call__(self, params, x, y, **kwargs):
        fx, back, y = self._forward(params, x, y, kwargs)
        return back(self._d_fx(fx, y))[0]


def grad(f, loss="mse"):
    """``fn(params, x, y, **kwargs) -> d_params``: ``value_and_grad`` without the value."""
    return _Grad(f, loss, "grad")
