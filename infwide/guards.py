"""Guards around a kernel computation: memory before it, precision after it.

Memory. Before computing, ``check_memory`` compares a *lower bound* of what the call will
allocate with the free memory of the device in use, and refuses at once (instead of being
killed half-way) when even that bound does not fit. The bound counts only the input
covariance that every path materialises (``N1 N2 E`` entries, ``E = prod(S)^2`` for a network
that keeps the full spatial covariance and ``prod(S)`` otherwise), once more for the NTK, so
the guard never refuses a call that would fit; ``infwide.batch`` then computes the kernel in
tiles that do fit.

Precision. After computing, ``check_result`` refuses NaN or Inf anywhere in the result (the
per-input variances ``cov1``/``cov2`` included: they can overflow where the pair kernel,
after a bounded activation, does not). When
that happens it replays the network layer by layer to name the first layer whose output is no
longer finite, and, in float32, says that it is an overflow of float32's range and suggests
float64. An all-zero float32 result from non-zero inputs is reported as an underflow.
"""
import numpy as np

from . import device
from .backend import get_xp

__all__ = ["KernelMemoryError", "PrecisionError", "check_memory", "check_result",
           "lower_bound_bytes", "fused_lower_bound_bytes"]


class KernelMemoryError(MemoryError):
    """The kernel would not fit in the memory of the device in use."""


class PrecisionError(ValueError, FloatingPointError):
    """The kernel left the floating-point range (overflow, underflow or NaN)."""


def _gib(b):
    return f"{b / 2**30:,.1f} GiB" if b < 2**50 else f"{b / 2**40:,.0f} TiB"


def lower_bound_bytes(n1, n2, in_shape, full, itemsize, compute_ntk):
    """Bytes the call allocates at the least: the input covariance (and its NTK twin)."""
    s = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
    entries = s * s if full else s
    return n1 * n2 * entries * itemsize * (2 if compute_ntk else 1)


def fused_lower_bound_bytes(n1, n2, in_shape, out_shape, full, itemsize, compute_ntk,
                            x1_is_x2):
    """The fused CPU route (``infwide.stax._fusion``) never builds the pairs' input covariance;
    it keeps each input's own covariance and writes the output: that is its lower bound."""
    s = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
    s_out = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
    own = (n1 if x1_is_x2 else n1 + n2) * (s * s if full else s)
    return (own + n1 * n2 * s_out * s_out * (2 if compute_ntk else 1)) * itemsize


def check_memory(layer, x1, x2, full, itemsize, compute_ntk, gpu_device=None, need=None):
    """Raise ``KernelMemoryError`` when the call cannot fit in the device's free memory.

    ``need`` overrides the lower bound of the unfused route (``lower_bound_bytes``)."""
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    if need is None:
        need = lower_bound_bytes(n1, n2, tuple(x1.shape), full, itemsize, compute_ntk)
    if need < 2**28:   # below 256 MiB: not worth a system call
        return
    have = device.available_memory(None if gpu_device is None else [gpu_device])
    if need > have:
        form = "full spatial covariance" if full else "spatial diagonal" if len(x1.shape) > 2 \
            else "kernel"
        raise KernelMemoryError(
            f"{layer.name}: kernel_fn on {n1} x {n2} inputs of shape {tuple(x1.shape[1:])} "
            f"needs at least {_gib(need)} (its {form} and results), but the "
            f"{'GPU' if gpu_device is not None else 'host'} has {_gib(have)} free. "
            "Use infwide.batch(kernel_fn) to compute it in tiles that fit (with store=DIR to "
            "make it resumable).")


def check_result(layer, k_in, k_out, out_full):
    """Refuse a non-finite result, naming the layer where it appeared (see module docstring).

    To name it, the network is replayed one layer at a time with ``layer.kernel_steps(k_in,
    out_full)`` (pairs ``(label, kernel after that step)``; none for a single layer).
    """
    xp = get_xp(k_out.nngp)
    bad = [name for name in ("nngp", "ntk", "cov1", "cov2") if getattr(k_out, name) is not None
           and not bool(xp.isfinite(getattr(k_out, name)).all())]
    if bad:
        where = _first_bad_step(layer, k_in, out_full, _not_finite)
        raise PrecisionError(_message(layer, k_out, bad, where))
    if k_out.nngp.dtype == np.float32 and k_in.nngp.size and \
            bool((xp.abs(k_in.nngp) > 0).any()) and not bool((xp.abs(k_out.nngp) > 0).any()):
        where = _first_bad_step(layer, k_in, out_full, _all_zero)
        loc = f" at {where}" if where else ""
        raise PrecisionError(
            f"{layer.name}: the float32 kernel underflowed to zero{loc} although the inputs are "
            "not zero (the variances shrank below float32's smallest number, e.g. small W_std "
            "over many layers); compute in float64 (x.astype(numpy.float64)).")


def _message(layer, k_out, bad, where):
    what = " and ".join(bad)
    loc = f" at {where}" if where else ""
    if k_out.nngp.dtype == np.float32:
        return (f"{layer.name}: float32 overflow: the {what} kernel left float32's range "
                f"(about 3.4e38){loc}. Compute in float64 (x.astype(numpy.float64)), or reduce "
                "W_std / the input scale.")
    return (f"{layer.name}: the {what} kernel is not finite (NaN or Inf){loc}; the weights or "
            "inputs are too large for float64 or a layer received an invalid covariance. "
            "Reduce W_std or rescale the inputs.")


def _not_finite(k):
    """Whether any of nngp, ntk, cov1, cov2 holds NaN or Inf."""
    return any(m is not None and m.size and not bool(get_xp(m).isfinite(m).all())
               for m in (k.nngp, k.ntk, k.cov1, k.cov2))


def _all_zero(k):
    """Whether the nngp is zero everywhere."""
    return bool(k.nngp.size) and not bool((get_xp(k.nngp).abs(k.nngp) > 0).any())


def _first_bad_step(layer, k, out_full, is_bad):
    """The label of the first step of ``layer.kernel_steps`` whose kernel ``is_bad``, or None."""
    try:
        with np.errstate(all="ignore"):   # the replay re-runs what already warned once
            for label, k_step in layer.kernel_steps(k, out_full):
                if is_bad(k_step):
                    return label
    except Exception:   # the diagnosis must never hide the original problem
        return None
    return None
