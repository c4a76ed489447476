"""infwide: infinitely wide neural networks without JAX and without autodiff."""
from . import stax
from .kernel import Kernel
from .batching import batch
from . import predict
from . import models
from .empirical import (empirical_kernel_fn, empirical_nngp_fn, empirical_ntk_fn,
                        monte_carlo_kernel_fn, NtkImplementation)
from .taylor import linearize, taylor_expand, empirical_ntk_vp_fn
from .training import (vjp, value_and_grad, grad, init_ensemble, train_mse,
                       stable_learning_rate)

__version__ = "0.1.0"
__all__ = ["stax", "Kernel", "batch", "predict", "models", "__version__",
           "empirical_kernel_fn", "empirical_nngp_fn", "empirical_ntk_fn", "monte_carlo_kernel_fn",
           "NtkImplementation", "linearize", "taylor_expand", "empirical_ntk_vp_fn",
           "vjp", "value_and_grad", "grad", "init_ensemble", "train_mse", "stable_learning_rate"]
