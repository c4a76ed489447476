"""Layers and combinators with Neural Tangents' ``stax`` API (change one import)."""
from .layer import Layer
from .combinators import (serial, parallel, FanOut, FanInSum, FanInProd, FanInConcat,
                          Identity, repeat)
from .dense import Dense
from .nonlinear import Relu, LeakyRelu, Abs, ABRelu

__all__ = ["Layer", "serial", "parallel", "FanOut", "FanInSum", "FanInProd", "FanInConcat",
           "Identity", "repeat", "Dense", "Relu", "LeakyRelu", "Abs", "ABRelu"]
