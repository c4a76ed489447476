"""Numba-CUDA kernels that have no CPU twin file: the fused full-covariance convolution block
(whose activations, ABReLU family and Erf, go through ``duals.dual_dev`` to the one scalar
definition of each dual in ``kernels.activations``) and average pooling of full covariances.

Importing this package imports nothing heavy. Its modules ``block`` and ``pool``
import ``numba.cuda`` (through ``kernels._jit.cuda_module``) when they are themselves imported,
which infwide does only when a GPU array is given (or in Numba's CUDA simulator, for tests).
``reference`` holds the plain array (NumPy/CuPy) statements they are tested against.
"""
