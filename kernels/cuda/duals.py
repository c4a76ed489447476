"""The dual activations of the fused CUDA block: a dispatcher over the activation kind that
calls the one scalar definition of each dual (``kernels.activations``).

Each activation of a block is a row ``(kind, p0, p1, p2, p3)`` of a table of the kernel's
dtype, with the constants folded once on the host by the activation's own ``*_constants``
function (``act_table``), so that float32 kernels never promote to float64. ``dual_dev``
takes a row's kind and constants and calls ``relu.abrelu_scalar`` or ``erf.erf_scalar``:
``cpu_jit`` functions (``dual_dev`` is one too) that Numba-CUDA compiles as device functions
when the block kernel calls them; in Numba's CUDA simulator they run as compiled CPU code.
A new kind needs an entry in ``_CONSTANTS``, a branch here and one in ``reference.dual``.
"""
import numpy as np

from .._jit import cpu_jit
from ..activations.erf import erf_constants, erf_scalar
from ..activations.relu import abrelu_constants, abrelu_scalar
from .reference import ACT_ABRELU, ACT_ERF, ACT_NONE

__all__ = ["act_table", "dual_dev"]

_CONSTANTS = {ACT_ABRELU: lambda a, b, c: abrelu_constants(a, b), ACT_ERF: erf_constants}


def act_table(acts, dtype):
    """Raw activation rows ``(kind, a, b, c)`` -> the folded device table ``(L, 5)``."""
    out = np.zeros((len(acts), 5), dtype=np.float64)
    for l, (kind, a, b, c) in enumerate(np.asarray(acts, dtype=np.float64)):
        out[l, 0] = kind
        if int(kind) in _CONSTANTS:
            prm = _CONSTANTS[int(kind)](a, b, c)
            out[l, 1:1 + len(prm)] = prm
        elif int(kind) != ACT_NONE:
            raise ValueError(f"act_table: unknown activation kind {kind!r}; expected "
                             f"{ACT_NONE} (none), {ACT_ABRELU} (ABReLU) or {ACT_ERF} (Erf).")
    return out.astype(dtype)


@cpu_jit
def dual_dev(kind, prm, k11, k12, k22):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` of one entry for an activation of kind
    ``kind`` with folded constants ``prm`` (a tuple; a table row's ``[1:]``), in the precision
    of ``k12``; the identity, ``(k12, 1)``, for ``ACT_NONE``."""
    T = type(k12)
    if kind == T(ACT_ABRELU):
        return abrelu_scalar(k11, k12, k22, prm, T)
    if kind == T(ACT_ERF):
        return erf_scalar(k11, k12, k22, prm, T)
    return k12, T(1.0)
