"""``Flatten``: all non-batch axes into one feature axis (Neural Tangents' ``Flatten``).

A dense readout of the flattened features ``z = sum_{s, c} W[s, c] x[s, c] / sqrt(S C)``
sees only same-position products, so the kernel is the mean of the spatial diagonal
(Novak et al. 2019, section 3.1, "vectorisation"): ``K' = mean_s K[s, s]``. Only the diagonal
is needed, which is what makes Flatten-read-out CNNs cheap (``input_needs_full`` is False).
"""
import numpy as np

from ..backend import get_xp
from ..kernels import ops
from ..kernels.pool import flatten_diag, flatten_full
from .layer import Layer, linear_jvp

__all__ = ["Flatten"]


class _Flatten(Layer):
    def __init__(self, batch_axis=0, batch_axis_out=0):
        if batch_axis_out not in (0, 1, -1, -2):
            raise ValueError(f"Flatten: `batch_axis_out` must be 0 or 1, got {batch_axis_out!r}.")
        self.batch_axis = int(batch_axis)
        self.batch_axis_out = 0 if batch_axis_out in (0, -2) else 1
        self.name = "Flatten"

    def input_axes(self):
        if self.batch_axis == 0:
            return None
        return self.batch_axis, (0 if self.batch_axis == -1 else -1)

    def output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Flatten: expected inputs with a batch axis and at least one more, "
                             f"got shape {tuple(input_shape)}.")
        ba = self.batch_axis % len(input_shape)
        n = input_shape[ba]
        rest = int(np.prod([s for i, s in enumerate(input_shape) if i != ba]))
        return (n, rest) if self.batch_axis_out == 0 else (rest, n)

    def forward(self, params, x, rng=None):
        xp = get_xp(x)
        out_shape = self.output_shape(x.shape)
        y = xp.moveaxis(x, self.batch_axis % x.ndim, 0).reshape(out_shape[self.batch_axis_out], -1)
        if self.batch_axis_out == 1:
            y = y.T
        return y, x.shape

    def apply(self, params, x, rng=None):
        return self.forward(params, x)[0]

    def backward(self, params, cache, ct):
        xp = get_xp(ct)
        if self.batch_axis_out == 1:
            ct = ct.T
        ba = self.batch_axis % len(cache)
        moved = (cache[ba],) + tuple(s for i, s in enumerate(cache) if i != ba)
        return (), xp.moveaxis(ct.reshape(moved), 0, ba)

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: flattening is linear, ``dy = flatten(dx)``."""
        return linear_jvp(self, params, x, d_params, dx)

    def input_needs_full(self, out_full):
        return False

    def fused_op(self):
        return ops.Flatten()

    def kernel(self, k, out_full=False):
        if k.n_spatial == 0:
            return k.replace(is_gaussian=False)
        xp = get_xp(k.nngp)
        red = flatten_diag if k.diagonal_spatial else flatten_full
        width = int(np.prod(k.shape1[1:]))
        return k.map_covariances(lambda m, nb: red(xp, m, nb), shape1=(k.shape1[0], width),
                                 shape2=(k.shape2[0], width), diagonal_spatial=True,
                                 is_gaussian=False)


def Flatten(batch_axis=0, batch_axis_out=0):
    """Flatten all non-batch axes (C order of the input layout) into one feature axis."""
    return _Flatten(batch_axis, batch_axis_out)
