"""Predictions over training time from NNGP/NTK kernels: Neural Tangents' ``predict`` API.

- :func:`gradient_descent_mse`: closed-form gradient flow on the MSE loss.
- :func:`gradient_descent_mse_ensemble`: mean and covariance of an infinite ensemble of
  infinitely wide networks trained by gradient flow (NNGP and NTK).
- :func:`gp_inference`: NNGP / NTK / NTKGP posteriors (infinite training time).
- :func:`gradient_descent`: any loss (with momentum), solved as an ODE with SciPy;
  :data:`cross_entropy`, :data:`mse` and :class:`Loss` supply gradients (no autodiff).
- :func:`max_learning_rate`: the largest stable learning rate for the MSE loss.

Predictors are small objects; each caches its factorisations (eigendecomposition for finite
times, Cholesky for ``t=None``) on first need, so later calls, times and test sets reuse them.
Factorisations run in float64 by default, also for float32 kernels (``factor_dtype=np.float32``
to stay in single precision); NumPy inputs use LAPACK, CuPy inputs cuSOLVER.
"""
from ._inputs import Gaussian
from .ensemble import GradientDescentMSEEnsemble, gradient_descent_mse_ensemble
from .gp import GPInference, gp_inference
from .losses import Loss, cross_entropy, mse
from .lr import max_learning_rate
from .gd_mse import GradientDescentMSE, gradient_descent_mse
from .ode import GradientDescent, ODEState, gradient_descent

__all__ = ["Gaussian", "gradient_descent_mse", "gradient_descent_mse_ensemble", "gp_inference",
           "gradient_descent", "max_learning_rate", "ODEState", "Loss", "cross_entropy", "mse",
           "GradientDescentMSE", "GradientDescentMSEEnsemble", "GPInference", "GradientDescent"]
