"""Finite-width kernels of ``stax`` networks: empirical NNGP / NTK and Monte-Carlo estimates."""
from .kernels import (empirical_kernel_fn, empirical_nngp_fn, empirical_ntk_fn, EmpiricalKernel,
                      NtkImplementation)
from .monte_carlo import monte_carlo_kernel_fn

__all__ = ["empirical_kernel_fn", "empirical_nngp_fn", "empirical_ntk_fn", "EmpiricalKernel",
           "monte_carlo_kernel_fn", "NtkImplementation"]
