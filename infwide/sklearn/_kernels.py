"""Kernel matrices between two sets of inputs, in row tiles, with optional progress.

``compute_kernels(layer, x1, x2, batch_size, progress)`` returns a dict with ``nngp``,
``ntk`` (both ``(N1, N2)``) and ``var1`` (``(N1,)``, the NNGP of each ``x1`` with itself,
which the predictive variance needs). When ``infwide.batch`` is available it does the
tiling; otherwise the rows of ``x1`` are processed ``batch_size`` at a time here.
"""
import importlib
import sys
import time

import numpy as np

from ..backend import to_numpy

__all__ = ["compute_kernels", "Progress"]


class Progress:
    """A progress bar: tqdm when installed, else a line on stderr about every 2 seconds."""

    def __init__(self, total, desc, enabled=True):
        self.total, self.desc, self.done, self.enabled = total, desc, 0, enabled
        self._bar, self._last = None, time.perf_counter()
        if not enabled:
            return
        try:
            tqdm = importlib.import_module("tqdm")
            self._bar = tqdm.tqdm(total=total, desc=desc, unit="row", file=sys.stderr)
        except ImportError:
            print(f"{desc}: 0/{total} rows", file=sys.stderr, flush=True)

    def update(self, n):
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and (time.perf_counter() - self._last > 2 or self.done >= self.total):
            self._last = time.perf_counter()
            print(f"{self.desc}: {self.done}/{self.total} rows", file=sys.stderr, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def _tile(kernel_fn, x1, x2):
    k = kernel_fn(x1, x2)
    if k.nngp.ndim != 2:
        raise ValueError(f"the network's output has spatial axes (kernel shape {k.nngp.shape}); "
                         "end it with a readout (Flatten or GlobalAvgPool, then Dense).")
    return to_numpy(k.nngp), to_numpy(k.ntk), to_numpy(k.cov1)


def compute_kernels(layer, x1, x2=None, batch_size=0, progress=False, desc="kernel"):
    """NNGP, NTK and the NNGP self-variances of ``x1`` against ``x2`` (``None``: ``x1``).

    ``batch_size`` rows of ``x1`` per call to the network's ``kernel_fn`` (0: all at once).
    """
    kernel_fn = layer.kernel_fn
    n = len(x1)
    step = n if not batch_size or batch_size >= n else int(batch_size)
    bar = Progress(n, desc, enabled=progress)
    parts = []
    try:
        for start in range(0, n, step):
            rows = x1[start:start + step]
            other = rows if (x2 is None and step == n) else (x1 if x2 is None else x2)
            parts.append(_tile(kernel_fn, rows, None if other is rows else other))
            bar.update(len(rows))
    finally:
        bar.close()
    nngp, ntk, var1 = (np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts))
    return {"nngp": nngp, "ntk": ntk, "var1": var1}
