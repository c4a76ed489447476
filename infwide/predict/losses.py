r"""Losses for :func:`~infwide.predict.gradient_descent`, each with its gradient in ``fx``.

infwide has no autodiff, so a loss carries its own gradient. :data:`cross_entropy` and
:data:`mse` are provided with analytic gradients; ``Loss(fn)`` wraps any other
``fn(fx, y_train) -> float`` and differentiates it by central finite differences (accurate to
about ``eps**(2/3)``, and costing ``2 * fx.size`` evaluations of ``fn`` per gradient: fine for
small problems, slow for large ones; pass ``grad=`` when you can).
"""
import numpy as np

from ..backend import get_xp

__all__ = ["Loss", "cross_entropy", "mse", "as_loss"]


class Loss:
    """A loss ``fn(fx, y) -> float`` together with ``grad(fx, y) -> d fn / d fx``."""

    def __init__(self, fn, grad=None, name=None):
        if not callable(fn):
            raise TypeError(f"Loss: `fn` must be callable as fn(fx, y); got {type(fn).__name__}.")
        if grad is not None and not callable(grad):
            raise TypeError(f"Loss: `grad` must be callable or None; got {type(grad).__name__}.")
        self.fn, self._grad = fn, grad
        self.name = name or getattr(fn, "__name__", "loss")

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


def numerical_grad(fn, fx, y):
    """Central finite differences of a scalar ``fn(fx, y)`` in every entry of ``fx`` (float64)."""
    x = np.array(fx, dtype=np.float64)
    flat = x.reshape(-1)
    g = np.empty_like(flat)
    base = np.finfo(np.float64).eps ** (1 / 3)
    for i in range(flat.size):
        h = base * max(1.0, abs(flat[i]))
        orig = flat[i]
        flat[i] = orig + h
        f_plus = float(fn(x, y))
        flat[i] = orig - h
        f_minus = float(fn(x, y))
        flat[i] = orig
        g[i] = (f_plus - f_minus) / (2 * h)
    return g.reshape(x.shape)


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
    return (p * y.sum(axis=-1, keepdims=True) - y) / fx.size


def _mse(fx, y):
    """``0.5 * mean((fx - y)**2)``: the loss of :func:`~infwide.predict.gradient_descent_mse`."""
    xp = get_xp(fx, y)
    return 0.5 * float(xp.mean((fx - y) ** 2))


def _mse_grad(fx, y):
    return (fx - y) / fx.size


cross_entropy = Loss(_cross_entropy, _cross_entropy_grad, "cross_entropy")
mse = Loss(_mse, _mse_grad, "mse")


def as_loss(loss):
    """A :class:`Loss`, an object with a ``grad`` method, or a plain callable (wrapped)."""
    if isinstance(loss, Loss) or (callable(getattr(loss, "grad", None)) and callable(loss)):
        return loss
    if callable(loss):
        return Loss(loss)
    raise TypeError(f"gradient_descent: `loss` must be callable as loss(fx, y_train) (a Loss "
                    f"with a gradient, or a plain function); got {type(loss).__name__}.")
