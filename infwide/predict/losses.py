"""Losses for :func:`~infwide.predict.gradient_descent`: re-exported from :mod:`infwide.losses`,
the one loss protocol that training (``infwide.grad``) and ``predict`` share."""
from ..losses import Loss, SlowGradientWarning, as_loss, cross_entropy, mse, numerical_grad

__all__ = ["Loss", "cross_entropy", "mse", "as_loss", "numerical_grad", "SlowGradientWarning"]
