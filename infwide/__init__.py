"""infwide: infinitely wide neural networks without JAX and without autodiff."""
from . import stax
from .kernel import Kernel
from .batching import batch
from . import predict

__version__ = "0.1.0"
__all__ = ["stax", "Kernel", "batch", "predict", "__version__"]
