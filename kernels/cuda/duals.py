"""CUDA dual activations (ABReLU family and Erf) as device functions for the fused kernels.
(Elementwise CUDA duals of every activation, for device arrays, live in
``kernels/activations/_cuda.py``.)

The formulas are those of ``reference.abrelu_dual`` and ``reference.erf_dual``. Each
activation is a row of a table ``(kind, q0, q1, q2, q3, one)`` of the kernel's dtype whose
constants are folded on the host (``act_table``), so that float32 kernels never promote to
float64:

    ABReLU(a, b): q0 = (a^2 + b^2) / 2, q1 = (a - b)^2 / (2 pi)
        nngp = q1 r + (q0 - q1 theta) k12,  dot = q0 - q1 theta
    Erf(a, b, c): q0 = 2 a^2 / pi, q1 = 2 b^2, q2 = c^2, q3 = 4 a^2 b^2 / pi
        nngp = q0 atan2(q1 k12, R) + q2,  dot = q3 / R,
        R = sqrt((1 + q1 k11)(1 + q1 k22) - (q1 k12)^2)
"""
import math

import numpy as np

from .._jit import cuda_module
from .reference import ACT_ABRELU, ACT_ERF, ACT_NONE

cuda = cuda_module()

__all__ = ["act_table", "dual_dev"]


def act_table(acts, dtype):
    """Raw activation rows ``(kind, a, b, c)`` -> the folded device table ``(L, 6)``."""
    out = np.zeros((len(acts), 6), dtype=np.float64)
    for l, (kind, a, b, c) in enumerate(np.asarray(acts, dtype=np.float64)):
        out[l, 0], out[l, 5] = kind, 1.0
        if int(kind) == ACT_ABRELU:
            out[l, 1:3] = ((a * a + b * b) / 2, (a - b) ** 2 / (2 * math.pi))
        elif int(kind) == ACT_ERF:
            out[l, 1:5] = (2 * a * a / math.pi, 2 * b * b, c * c, 4 * a * a * b * b / math.pi)
        elif int(kind) != ACT_NONE:
            raise ValueError(f"act_table: unknown activation kind {kind!r}; expected "
                             f"{ACT_NONE} (none), {ACT_ABRELU} (ABReLU) or {ACT_ERF} (Erf).")
    return out.astype(dtype)


@cuda.jit(device=True)
def dual_dev(act, k11, k12, k22):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for one entry; ``act`` a table row."""
    kind = act[0]
    if kind == 1.0:
        r2 = k11 * k22 - k12 * k12
        if r2 < act[5] - act[5]:
            r2 = act[5] - act[5]
        r = math.sqrt(r2)
        dot = act[1] - act[2] * math.atan2(r, k12)
        return act[2] * r + dot * k12, dot
    if kind == 2.0:
        q1 = act[2]
        det = k11 * k22 - k12 * k12   # clamped: the expanded product cancels in float32
        if det < act[5] - act[5]:
            det = act[5] - act[5]
        root = math.sqrt(act[5] + q1 * (k11 + k22) + q1 * q1 * det)
        return act[1] * math.atan2(q1 * k12, root) + act[3], act[4] / root
    return k12, act[5]
