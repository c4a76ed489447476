"""Memory budget and tile sizes.

Model of the working memory of one tile of ``n1 x n2`` pairs (documented in
docs/scale.md)::

    bytes(n1, n2) = n1 n2 P + (n1 + n2) Q
    P = E_pair  * itemsize * LIVE        per pair:  the nngp/ntk tensors and their temporaries
    Q = (E_self * LIVE + D) * itemsize   per input: its own covariance (cov1/cov2) and its data

``E_pair`` is the number of covariance entries one pair carries: ``prod(S)`` when the network
keeps only the spatial diagonal and ``prod(S)^2`` when it keeps the full spatial covariance
(``S`` the larger of the input and output spatial shapes); ``E_self`` the same for one input
with itself; ``D`` the number of values of one input. ``LIVE`` counts the tensors of that size
alive at once inside a layer (nngp and ntk in and out, and the temporaries of a dual
activation: ``sqrt``, ``arctan2``, products); it is checked against ``tracemalloc`` in
tests/batching/test_batch_memory.py. Tiles then satisfy ``workers_in_flight * bytes(n1, n2) <= budget``.

Layers whose temporaries are larger than that (a quadrature with many nodes, say) are caught
by a measurement: on the CPU, ``measured_pair_bytes`` runs the kernel function on two small
tiles ``(a, a)`` and ``(2a, a)`` under ``tracemalloc`` and takes the slope, ``P + Q / a``;
the larger of the model and the measurement is used. (Skipped while the caller is already
tracing, so as not to reset its peak, and on GPUs, where tracemalloc sees nothing.)
"""
import math
import re
import tracemalloc

import numpy as np

__all__ = ["LIVE", "SAFE_SHARE", "parse_budget", "pair_model", "choose_tile", "tile_bytes",
           "measured_pair_bytes"]

LIVE = 12
SAFE_SHARE = 0.5
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "t": 1e12, "tb": 1e12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}


def parse_budget(budget):
    """Bytes from an int/float or a string such as ``'512MB'`` or ``'2GiB'``; None stays None."""
    if budget is None:
        return None
    if isinstance(budget, str):
        m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", budget)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"batch: `memory_budget` {budget!r} is not a size; expected bytes "
                             "(an int) or a string such as '512MB' or '2GiB'.")
        budget = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) \
            or not budget > 0 or not math.isfinite(budget):
        raise ValueError(f"batch: `memory_budget` must be a positive number of bytes, got "
                         f"{budget!r}.")
    return int(budget)


def pair_model(in_shape, out_shape, full, itemsize):
    """``(P, Q)`` of the module docstring for inputs of shape ``in_shape`` (batch first)."""
    s_in = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
    s_out = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
    s = max(s_in, s_out)
    entries = s * s if full else s
    d = int(np.prod(in_shape[1:]))
    return entries * itemsize * LIVE, (entries * LIVE + d) * itemsize


def tile_bytes(n1, n2, model):
    p, q = model
    return n1 * n2 * p + (n1 + n2) * q


def choose_tile(n1, n2, model, budget):
    """A largest ``(b1, b2)`` with ``tile_bytes(b1, b2) <= budget``: the largest square, then
    each side grown while it fits (neither side can grow by one)."""
    p, q = model
    b = int((-q + math.sqrt(q * q + p * budget)) / p)
    if b < 1:
        raise MemoryError(f"batch: a single pair needs about {tile_bytes(1, 1, model):,} bytes "
                          f"of working memory, more than the budget of {budget:,} bytes per "
                          "tile; give a larger `memory_budget` or fewer workers.")
    b1, b2 = min(b, n1), min(b, n2)
    # then grow each side as far as the other allows (a symmetric plan uses min(b1, b2))
    b1 = max(b1, min(n1, int((budget - b2 * q) / (b2 * p + q))))
    b2 = max(b2, min(n2, int((budget - b1 * q) / (b1 * p + q))))
    return b1, b2


def _traced_peak(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measured_pair_bytes(kernel_fn, x1, x2, get, kwargs, model, target=2 ** 21):
    """``(bytes per pair, fixed bytes)`` measured on two small tiles (see the module
    docstring), or None when it cannot be measured (tracing already on, or one point).

    The bytes per pair are the slope ``P + Q / a``; the fixed bytes are what the smaller tile
    used beyond ``bytes(a, a)`` (Python objects, small caches). A warm-up call first keeps
    one-off costs (lazy imports, JIT compilation) out of the measurement.
    """
    xb = x1 if x2 is None else x2
    if tracemalloc.is_tracing() or len(x1) < 2:
        return None
    a = int(max(1, min(64, math.sqrt(target / model[0]), len(x1) // 2, len(xb))))
    kernel_fn(x1[:2 * a], xb[:a], get, **kwargs)
    small = _traced_peak(kernel_fn, x1[:a], xb[:a], get, **kwargs)
    large = _traced_peak(kernel_fn, x1[:2 * a], xb[:a], get, **kwargs)
    per_pair = max(0.0, (large - small) / (a * a))
    fixed = max(0.0, small - tile_bytes(a, a, (max(per_pair, model[0]), model[1])))
    return per_pair, fixed
