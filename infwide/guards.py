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
    from .batching import _memory   # lazily: batching imports stax, which imports this
    have = _memory.available_memory(None if gpu_device is None else [gpu_device])
    if need > have:
        form = "full spatial covariance" if full else "spatial diagonal" if len(x1.shape) > 2 \
            else "kernel"
        raise KernelMemoryError(
            f"{layer.name}: kernel_fn on {n1} x {n2} inputs of shape {tuple(x1.shape[1:])} "
            f"needs at least {_gib(need)} (its {form} and results), but the "
            f"{'GPU' if gpu_device is not None else 'host'} has {_gib(have)} free. "
            "Use infwide.batch(kernel_fn) to compute it in tiles that fit (with store=DIR to "
            "make it resumable).")


def check_result(layer, k_in, k_out, kernel_call):
    """Refuse a non-finite result, naming the layer where it appeared (see module docstring).

    ``kernel_call(layer, k)`` runs one layer's kernel (used only to diagnose a failure).
    """
    xp = _xp(k_out.nngp)
    bad = [name for name in ("nngp", "ntk", "cov1", "cov2") if getattr(k_out, name) is not None
           and not bool(xp.isfinite(getattr(k_out, name)).all())]
    if bad:
        where = _first_bad_layer(layer, k_in, kernel_call)
        raise PrecisionError(_message(layer, k_out, bad, where))
    if k_out.nngp.dtype == np.float32 and k_in.nngp.size and \
            bool((xp.abs(k_in.nngp) > 0).any()) and not bool((xp.abs(k_out.nngp) > 0).any()):
        where = _first_bad_layer(layer, k_in, kernel_call, _all_zero)
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


def _not_finite(m):
    return not bool(_xp(m).isfinite(m).all())


def _all_zero(m):
    return not bool((_xp(m).abs(m) > 0).any())


def _first_bad_layer(layer, k, kernel_call, is_bad=_not_finite):
    """Replay a serial network layer by layer; "layer i (name)" of the first whose nngp, ntk,
    cov1 or cov2 ``is_bad`` (not finite, by default), counting from 0 in ``layer.layers``."""
    layers = getattr(layer, "layers", None)
    if layers is None:
        return None
    try:
        reqs = layer.requirements(not k.diagonal_spatial) if hasattr(layer, "requirements") \
            else [False] * len(layers)
        from .stax.combinators import match_form
        with np.errstate(all="ignore"):   # the replay re-runs what already warned once
            return _replay(layers, reqs, k, kernel_call, is_bad, match_form)
    except Exception:   # the diagnosis must never hide the original problem
        return None


def _replay(layers, reqs, k, kernel_call, is_bad, match_form):
    for i, (sub, req) in enumerate(zip(layers, reqs)):
        k = kernel_call(sub, match_form(k, sub.input_needs_full(req), sub), req)
        for m in (k.nngp, k.ntk, k.cov1, k.cov2) if is_bad is _not_finite else (k.nngp,):
            if m is not None and m.size and is_bad(m):
                return f"layer {i} ({sub.name})"
    return None


def _xp(a):
    from .kernels._xp import get_xp
    return get_xp(a)
