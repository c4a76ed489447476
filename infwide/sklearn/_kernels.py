"""Kernel matrices between two sets of inputs, tiled by ``infwide.batch``.

``compute_kernels(layer, x1, x2, batch_size, progress)`` returns a dict with ``nngp``,
``ntk`` (both ``(N1, N2)``) and ``var1`` (``(N1,)``, the NNGP of each ``x1`` with itself,
which the predictive variance needs), as NumPy arrays (GPU results are copied back).
"""
from ..backend import to_numpy
from ..batching import batch

__all__ = ["compute_kernels"]


def compute_kernels(layer, x1, x2=None, batch_size=0, progress=None):
    """NNGP, NTK and the NNGP self-variances of ``x1`` against ``x2`` (``None``: ``x1``).

    ``batch_size`` points per tile along each batch axis (0: chosen from the free memory);
    ``progress`` as in ``infwide.batch`` (None/False: silent, True: a bar or log lines).
    """
    k = batch(layer.kernel_fn, batch_size=batch_size, progress=progress)(x1, x2)
    if k.nngp.ndim != 2:
        raise ValueError(f"the network's output has spatial axes (kernel shape {k.nngp.shape}); "
                         "end it with a readout (Flatten or GlobalAvgPool, then Dense).")
    return {"nngp": to_numpy(k.nngp), "ntk": to_numpy(k.ntk), "var1": to_numpy(k.cov1)}
