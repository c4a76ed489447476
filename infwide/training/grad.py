"""Gradients of finite ``stax`` networks without autodiff: each layer's hand-derived backward
pass (``Layer.backward``), chained by the combinators.

``vjp(f, params, x)`` is the vector-Jacobian product of the network at ``(params, x)``;
``value_and_grad(f, loss)`` and ``grad(f, loss)`` wrap it with a loss whose gradient with
respect to the outputs is known in closed form (``mse_loss``, ``cross_entropy_loss``, or any
callable ``loss(fx, y) -> (value, d_value/d_fx)``).
"""
import numpy as np

from ..backend import get_xp
from ..device import params_to_device
from ..keywords import APPLY_KEYWORDS, reject_unknown
from ..params import check_params
from ..stax.layer import as_layer, input_shape, prepare_inputs

__all__ = ["vjp", "value_and_grad", "grad", "mse_loss", "cross_entropy_loss", "LOSSES"]


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


def mse_loss(fx, y):
    """NT's squared loss ``||fx - y||^2 / (2 N K)`` (``N K = y.size``) and its gradient
    ``(fx - y) / (N K)``: the loss under which ``predict.gradient_descent_mse`` describes
    training with time ``t = steps * learning_rate``."""
    r = fx - y
    n = r.size
    return float((r * r).sum()) / (2 * n), r / r.dtype.type(n)


def cross_entropy_loss(fx, y):
    """Mean softmax cross-entropy over the batch, ``-sum_k y_k log softmax(fx)_k / N``, for
    one-hot (or probability) targets ``y`` on the last axis; gradient ``(softmax(fx) - y) / N``."""
    xp = get_xp(fx)
    z = fx - fx.max(axis=-1, keepdims=True)
    log_p = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
    n = fx.size // fx.shape[-1]
    value = -float((y * log_p).sum()) / n
    return value, (xp.exp(log_p) - y) / fx.dtype.type(n)


LOSSES = {"mse": mse_loss, "cross_entropy": cross_entropy_loss}


def _resolve_loss(loss, where):
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"{where}: unknown loss {loss!r}; expected one of {sorted(LOSSES)} "
                             "or a callable loss(fx, y) -> (value, d_value/d_fx).")
        return LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"{where}: `loss` must be a name in {sorted(LOSSES)} or a callable "
                        f"loss(fx, y) -> (value, d_value/d_fx); got {type(loss).__name__}.")
    return loss


class _ValueAndGrad:
    """``fn(params, x, y, **kwargs) -> (loss value, d loss / d params)``."""

    def __init__(self, f, loss, where):
        self.layer = as_layer(f, where)
        self.loss = _resolve_loss(loss, where)
        self.where = where

    def __call__(self, params, x, y, **kwargs):
        fx, back = vjp(self.layer, params, x, **kwargs)
        y = prepare_inputs(y, "y")
        if tuple(y.shape) != tuple(fx.shape):
            raise ValueError(f"{self.where}: targets `y` must have the network output's shape "
                             f"{tuple(fx.shape)}, got {tuple(y.shape)}.")
        value, d_fx = self.loss(fx, y)
        return value, back(d_fx)[0]


def value_and_grad(f, loss="mse"):
    """``fn(params, x, y, **kwargs) -> (loss, d_params)`` for a ``stax`` network ``f``.

    ``loss`` is ``'mse'`` (NT's ``||f - y||^2 / (2 N K)``), ``'cross_entropy'``, or a callable
    ``loss(fx, y) -> (value, d_value/d_fx)``. Gradients come from the layers' hand-derived
    backward passes (no autodiff).
    """
    return _ValueAndGrad(f, loss, "value_and_grad")


class _Grad(_ValueAndGrad):
    def __call__(self, params, x, y, **kwargs):
        return super().__call__(params, x, y, **kwargs)[1]


def grad(f, loss="mse"):
    """``fn(params, x, y, **kwargs) -> d_params``: ``value_and_grad`` without the value."""
    return _Grad(f, loss, "grad")
