"""The dual activations of the fused CPU loops: the one scalar definitions of
``kernels.activations`` under the names the fused programs call.

``abrelu_entry(k, v12, A, F)`` is ``activations.relu.abrelu_core`` in the precision of ``k``
(the float type is read from ``k`` at compile time, so a float32 loop never widens to
float64); ``abrelu_constants`` folds ``(a, b)`` into ``(A, F)``.
"""
from ..activations.relu import abrelu_constants, abrelu_core
from .._jit import cpu_jit

__all__ = ["abrelu_entry", "abrelu_constants"]


@cpu_jit
def abrelu_entry(k, v12, A, F):
    """``(E[phi phi], E[phi' phi'])`` of ABReLU for pre-activation covariance ``k`` and
    ``v12 = k11 k22``; see ``activations.relu`` for the formula."""
    return abrelu_core(k, v12, A, F, type(k))
