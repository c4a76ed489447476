"""Training finite ``stax`` networks without autodiff: gradients from hand-derived backward
passes, and full-batch gradient descent (with momentum) over ensembles."""
from .grad import vjp, value_and_grad, grad, mse_loss, cross_entropy_loss
from .ensemble import init_ensemble
from .descent import train_mse, Trajectory, stable_learning_rate

__all__ = ["vjp", "value_and_grad", "grad", "mse_loss", "cross_entropy_loss", "init_ensemble",
           "train_mse", "Trajectory", "stable_learning_rate"]
