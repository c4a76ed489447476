"""Typed operations: what a layer tells the engines it does to a covariance.

Every layer that a fused engine can run answers ``Layer.fused_op()`` with one of these records
(or None). One planner (``infwide.stax``) turns a network into a tuple of them, and each
engine (the fused CPU chains of ``kernels.fc`` and ``kernels.fused``, the CUDA blocks of
``kernels.cuda``) compiles that same tuple for its device. Fields are named; no engine reads
an operation by position.

All operations are in Neural Tangents' 'ntk' parameterization and act on the covariance of a
centred Gaussian layer (Novak et al. 2019 for the spatial maps, Lee et al. 2018 and Jacot et
al. 2018 for the affine and dual recursions):

- ``Affine(W2, b2)``: ``K <- W2 K + b2``, ``Theta <- K_new + W2 Theta`` (Dense; on every spatial
  entry of a spatial kernel).
- ``Conv(filter_shape, strides, padding, W2, b2)``: a shared-weight convolution, the filter in
  the kernel's spatial order; the same affine map after the patch average of Novak et al.
  2019, eq. 7.
- ``Dual(kind, params)``: a pointwise nonlinearity with a closed-form dual,
  ``K <- E[phi(u) phi(v)]``, ``Theta <- Theta E[phi'(u) phi'(v)]``; ``kind`` names the scalar
  dual in ``kernels.activations`` (``"abrelu"`` with ``params = (a, b)``, ``"erf"`` with
  ``(a, b, c)``, ...).
- ``AvgPool(window, strides, padding, normalize_edges)``, ``GlobalAvgPool()``, ``Flatten()``.
- ``Branches(branches, combine, widths)``: ``FanOut(n)``, then each branch (a tuple of
  operations, empty for ``Identity``) on its own copy, then ``FanInSum`` (``combine="sum"``:
  ``K = sum K_i``, ``Theta = sum Theta_i``), ``FanInProd`` (``"prod"``: ``K = prod K_i``,
  ``Theta = sum_i Theta_i prod_{j != i} K_j``) or ``FanInConcat`` along channels
  (``"concat"``: ``K = sum_i c_i K_i / sum_i c_i`` with ``widths = (c_1, ..., c_n)``).
"""
import dataclasses
from typing import Tuple

__all__ = ["Affine", "Conv", "Dual", "AvgPool", "GlobalAvgPool", "Flatten", "Branches",
           "is_gaussian_after", "OPS"]


@dataclasses.dataclass(frozen=True)
class Affine:
    """Dense in the 'ntk' parameterization: ``K <- W2 K + b2``, ``Theta <- K + W2 Theta``."""
    W2: float
    b2: float


@dataclasses.dataclass(frozen=True)
class Conv:
    """A shared-weight 'ntk' convolution (filter and strides in the kernel's spatial order)."""
    filter_shape: Tuple[int, ...]
    strides: Tuple[int, ...]
    padding: str
    W2: float
    b2: float

    @property
    def unit_stride(self):
        return all(s == 1 for s in self.strides)


@dataclasses.dataclass(frozen=True)
class Dual:
    """A pointwise nonlinearity by its closed-form dual (``kind`` names it, see above)."""
    kind: str
    params: Tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class AvgPool:
    window: Tuple[int, ...]
    strides: Tuple[int, ...]
    padding: str
    normalize_edges: bool


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool:
    pass


@dataclasses.dataclass(frozen=True)
class Flatten:
    pass


@dataclasses.dataclass(frozen=True)
class Branches:
    """``FanOut(len(branches))``, the branches side by side, and one fan-in (see above)."""
    branches: Tuple[tuple, ...]
    combine: str = "sum"
    widths: Tuple[int, ...] = ()


#: Every operation type, for engines that check what they are given.
OPS = (Affine, Conv, Dual, AvgPool, GlobalAvgPool, Flatten, Branches)


def is_gaussian_after(op, gaussian):
    """Whether the output of ``op`` is a centred Gaussian (what a ``Dual`` needs at its input),
    given whether its input is: affine maps and convolutions make one, nonlinearities, Flatten
    and products of several branches do not, poolings keep what they get; a sum or
    concatenation of Gaussian branches is Gaussian (as ``FanInSum``/``FanInProd`` say)."""
    if isinstance(op, (Affine, Conv)):
        return True
    if isinstance(op, (Dual, Flatten)):
        return False
    if isinstance(op, Branches):
        if op.combine == "prod" and len(op.branches) > 1:
            return False
        outs = []
        for branch in op.branches:
            g = gaussian
            for o in branch:
                g = is_gaussian_after(o, g)
            outs.append(g)
        return all(outs)
    return gaussian
