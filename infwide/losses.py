r"""Losses with their gradients: the one loss protocol of infwide (training and ``predict``).

Neural Tangents differentiates a user's loss with JAX. infwide has no autodiff, so a loss
carries its gradient in the outputs ``fx``. Everywhere a loss is taken
(``infwide.grad``/``value_and_grad``, ``predict.gradient_descent``), it may be:

- a name: ``'mse'`` or ``'cross_entropy'`` (the objects below);
- a :class:`Loss` (``Loss(fn, grad)``), or any callable object with a ``grad(fx, y)`` method;
- a pair ``(fn, grad)`` of callables;
- a plain function ``fn(fx, y) -> float``: then (and only then) the gradient comes from
  central finite differences, ``2 * fx.size`` calls of ``fn`` per gradient, accurate to
  about ``eps**(2/3)``; a :class:`SlowGradientWarning` says so when the loss is taken.

The normalisations are NT's (its examples and ``predict.gradient_descent_mse``):

.. math::
    L_\mathrm{mse} = \tfrac{1}{2}\,\mathrm{mean}\,(f - y)^2, \qquad
    L_\mathrm{ce} = -\mathrm{mean}\,(\log\mathrm{softmax}(f) \odot y),

means over every entry of ``fx`` (``N K`` of them for ``N`` examples and ``K`` outputs).

Example (a loss with its hand-written gradient, the fast exact path)::

    from infwide import predict
    huber = predict.Loss(lambda fx, y: float(np.mean(np.logaddexp(fx - y, y - fx))),
                         lambda fx, y: np.tanh(fx - y) / fx.size)
"""
import sys
import warnings

import numpy as np

from .backend import get_xp

__all__ = ["Loss", "cross_entropy", "mse", "as_loss", "numerical_grad", "SlowGradientWarning",
           "LOSSES"]


class SlowGradientWarning(UserWarning):
    """A loss without a gradient is differentiated by finite differences (slow)."""


class Loss:
    """A loss ``fn(fx, y) -> float`` together with ``grad(fx, y) -> d fn / d fx``.

    ``grad=None`` differentiates ``fn`` by central finite differences (see the module
    docstring); pass ``grad`` whenever you can: it is exact and ``2 * fx.size`` times cheaper.
    """

    def __init__(self, fn, grad=None, name=None):
        if not callable(fn):
            raise TypeError(f"Loss: `fn` must be callable as fn(fx, y); got {type(fn).__name__}.")
        if grad is not None and not callable(grad):
            raise TypeError(f"Loss: `grad` must be callable as grad(fx, y) or None; got "
                            f"{type(grad).__name__}.")
        self.fn, self._grad = fn, grad
        self.name = name or getattr(fn, "__name__", "loss")
        if grad is None:
            warnings.warn(f"the loss {self.name!r} has no gradient, so it will be "
                          "differentiated by finite differences (2 loss evaluations per output "
                          "entry and gradient). Pass predict.Loss(fn, grad) or a pair (fn, grad) "
                          "for the exact and fast path.", SlowGradientWarning,
                          stacklevel=_caller_level())

    def __repr__(self):
        kind = "analytic" if self._grad is not None else "finite-difference"
        return f"Loss({self.name}, {kind} gradient)"

    def __call__(self, fx, y):
        return self.fn(fx, y)

    def grad(self, fx, y):
        """Gradient in ``fx`` (same shape as ``fx``)."""
        if self._grad is not None:
            return self._grad(fx, y)
        return numerical_grad(self.fn, fx, y)

    def value_and_grad(self, fx, y):
        """``(loss value, gradient in fx)``."""
        return self(fx, y), self.grad(fx, y)


def _caller_level():
    """The ``stacklevel`` of the first frame outside infwide: warnings point at user code."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("infwide"):
        level, frame = level + 1, frame.f_back
    return level


def _scalar(fn, x, y):
    v = fn(x, y)
    try:
        return float(v)
    except TypeError:
        raise TypeError(f"loss: a plain loss function must return a scalar; got "
                        f"{type(v).__name__}. To give its gradient as well, pass "
                        "predict.Loss(fn, grad) or a pair (fn, grad).") from None


def numerical_grad(fn, fx, y):
    """Central finite differences of a scalar ``fn(fx, y)`` in every entry of ``fx`` (float64)."""
    dtype = getattr(fx, "dtype", np.dtype(np.float64))
    x = np.array(fx, dtype=np.float64)
    flat = x.reshape(-1)
    g = np.empty_like(flat)
    base = np.finfo(np.float64).eps ** (1 / 3)
    for i in range(flat.size):
        h = base * max(1.0, abs(flat[i]))
        orig = flat[i]
        flat[i] = orig + h
        f_plus = _scalar(fn, x, y)
        flat[i] = orig - h
        f_minus = _scalar(fn, x, y)
        flat[i] = orig
        g[i] = (f_plus - f_minus) / (2 * h)
    return g.reshape(x.shape).astype(dtype, copy=False)


def _log_softmax(xp, fx):
    shifted = fx - fx.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _cross_entropy(fx, y):
    """``-mean(log_softmax(fx, axis=-1) * y)`` (NT's example loss)."""
    xp = get_xp(fx, y)
    return -float(xp.mean(_log_softmax(xp, fx) * y))


def _cross_entropy_grad(fx, y):
    """``(softmax(fx) * sum(y, -1) - y) / fx.size``."""
    xp = get_xp(fx, y)
    p = xp.exp(_log_softmax(xp, fx))
    return (p * y.sum(axis=-1, keepdims=True) - y) / fx.dtype.type(fx.size)


def _mse(fx, y):
    """``0.5 * mean((fx - y)**2)``: the loss of :func:`~infwide.predict.gradient_descent_mse`."""
    xp = get_xp(fx, y)
    return 0.5 * float(xp.mean((fx - y) ** 2))


def _mse_grad(fx, y):
    return (fx - y) / fx.dtype.type(fx.size)


cross_entropy = Loss(_cross_entropy, _cross_entropy_grad, "cross_entropy")
mse = Loss(_mse, _mse_grad, "mse")
LOSSES = {"mse": mse, "cross_entropy": cross_entropy}


def as_loss(loss, where="loss"):
    """The :class:`Loss` (or object with ``grad``) for any accepted spelling of a loss."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"{where}: unknown loss {loss!r}; expected one of {sorted(LOSSES)}, "
                             "a predict.Loss(fn, grad), a pair (fn, grad) or a function fn(fx, y).")
        return LOSSES[loss]
    if isinstance(loss, Loss) or (callable(loss) and callable(getattr(loss, "grad", None))):
        return loss
    if isinstance(loss, tuple) and len(loss) == 2 and all(map(callable, loss)):
        return Loss(loss[0], loss[1])
    if callable(loss):
        return Loss(loss)
    raise TypeError(f"{where}: `loss` must be one of {sorted(LOSSES)}, a predict.Loss(fn, grad), "
                    f"a pair (fn, grad) or a function fn(fx, y) -> float; got "
                    f"{type(loss).__name__}.")
