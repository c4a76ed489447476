"""infwide's compute engine: covariance recursions, each with a NumPy/CuPy reference and
fused Numba CPU and Numba-CUDA implementations beside it. It knows covariance tensors and
nothing of layers or users; ``infwide`` wires it into layers.
"""
from ._xp import get_xp, is_gpu_array

__all__ = ["get_xp", "is_gpu_array"]
