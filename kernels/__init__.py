"""infwide's compute engine: covariance recursions, each with a NumPy/CuPy reference and
fused Numba CPU and Numba-CUDA implementations beside it. It knows covariance tensors and
nothing of layers or users; ``infwide`` wires it into layers.
"""
