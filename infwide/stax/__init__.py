"""Layers and combinators with Neural Tangents' ``stax`` API (change one import)."""
from .layer import Layer
from .combinators import (serial, parallel, FanOut, FanInSum, FanInProd, FanInConcat,
                          Identity, repeat)
from .dense import Dense
from .nonlinear import Relu, LeakyRelu, Abs, ABRelu
from .nonlinear import Sign, RectifiedMonomial
from .nonlinear_smooth import Erf, Sigmoid_like, Gelu, Sin, Cos, Rbf, Exp, Gaussian
from .nonlinear_poly import Monomial, Polynomial, Hermite, ElementwiseNumerical
from .conv import Conv, ConvTranspose, ConvLocal
from .pool import AvgPool, SumPool, GlobalAvgPool, GlobalSumPool
from .reshape import Flatten
from .norm import LayerNorm, Dropout

__all__ = ["Layer", "serial", "parallel", "FanOut", "FanInSum", "FanInProd", "FanInConcat",
           "Identity", "repeat", "Dense", "Relu", "LeakyRelu", "Abs", "ABRelu",
           "Conv", "ConvTranspose", "ConvLocal", "AvgPool", "SumPool", "GlobalAvgPool",
           "GlobalSumPool", "Flatten", "LayerNorm", "Dropout"]
__all__ += ["Sign", "RectifiedMonomial", "Erf", "Sigmoid_like", "Gelu", "Sin", "Cos", "Rbf",
            "Exp", "Gaussian", "Monomial", "Polynomial", "Hermite", "ElementwiseNumerical"]
