"""Inputs to a ``Kernel``: the empirical covariances of the raw inputs.

For inputs of shape ``(N, S_1, ..., S_d, C)`` (after moving the batch axis first and the
channel axis last) the input kernel is the channel average of products:
``nngp[i, j, s, s'] = sum_c x1[i, s, c] x2[j, s', c] / C``, with the spatial covariance kept
in full ``(N1, N2, S1, S1', S2, S2', ...)`` or only on its diagonal ``(N1, N2, S1, S2, ...)``.
The NTK of the inputs is zero. (Neural Tangents, Novak et al. 2020, ``_inputs_to_kernel``.)
"""
import string

from ..backend import as_array, check_finite, get_xp, result_dtype
from ..kernel import Kernel

__all__ = ["check_inputs", "inputs_to_kernel", "canonical_inputs", "same_batch_as_none"]


def check_inputs(x1, x2, batch_axis=0, channel_axis=-1):
    """The one validation of the raw inputs of a ``kernel_fn`` call (its public boundary):
    arrays with a batch and a channel axis, real and finite, ``x2`` shaped like ``x1`` apart
    from the batch axis. Returns ``(x1, x2)`` as NumPy or CuPy arrays in their own layout,
    ``x2`` None when it is ``x1`` or equal to it (see ``same_batch_as_none``). Everything
    after this trusts its inputs."""
    x1 = _checked(x1, "x1")
    if x2 is None:
        return x1, None
    x2 = _checked(x2, "x2")
    if _but_batch(x2.shape, batch_axis) != _but_batch(x1.shape, batch_axis):
        c1, c2 = (canonical_inputs(x, batch_axis, channel_axis).shape for x in (x1, x2))
        raise ValueError("kernel_fn: `x1` and `x2` must have the same shape apart from the "
                         f"batch axis; got {tuple(c1)} and {tuple(c2)}.")
    return x1, same_batch_as_none(x1, x2)


def _checked(x, name):
    x = as_array(x, name)
    if x.ndim < 2:
        raise ValueError(f"kernel_fn: `{name}` must have a batch axis and a channel axis "
                         f"(at least 2 dimensions, e.g. (N, features)); got shape {tuple(x.shape)}.")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"kernel_fn: `{name}` must hold real numbers; got dtype {x.dtype}.")
    check_finite(x, name, "kernel_fn")
    return x


def _but_batch(shape, batch_axis):
    return tuple(s for i, s in enumerate(shape) if i != batch_axis % len(shape))


def canonical_inputs(x, batch_axis=0, channel_axis=-1):
    """An input array (already validated) with its batch axis first and channel axis last."""
    return get_xp(x).moveaxis(x, (batch_axis % x.ndim, channel_axis % x.ndim), (0, x.ndim - 1))


def _outer_einsum(n_spatial, diagonal_spatial):
    """einsum string for the channel-averaged outer product of two input batches."""
    letters = string.ascii_letters[2:]
    sp1 = letters[:n_spatial]
    sp2 = letters[n_spatial:2 * n_spatial]
    if diagonal_spatial:
        return f"a{sp1}z,b{sp1}z->ab{sp1}"
    out = "".join(p + q for p, q in zip(sp1, sp2))
    return f"a{sp1}z,b{sp2}z->ab{out}"


def _self_cov(x, diagonal_spatial):
    """Per-input covariance (batch diagonal taken): (N, S..) or (N, S1, S1', ...)."""
    xp = get_xp(x)
    n_spatial = x.ndim - 2
    if diagonal_spatial or n_spatial == 0:
        return xp.mean(x * x, axis=-1)
    letters = string.ascii_letters[2:]
    sp1, sp2 = letters[:n_spatial], letters[n_spatial:2 * n_spatial]
    out = "".join(p + q for p, q in zip(sp1, sp2))
    return xp.einsum(f"a{sp1}z,a{sp2}z->a{out}", x, x) / x.shape[-1]


def same_batch_as_none(x1, x2):
    """``None`` when array ``x2`` is ``x1`` or equal to it element for element (NT's
    ``x1_is_x2``: the symmetric case, computed once), else ``x2``."""
    if x2 is None or x2 is x1:
        return None
    if x1.shape == x2.shape and x1.dtype == x2.dtype and \
            bool(get_xp(x1, x2).array_equal(x1, x2)):
        return None
    return x2


def inputs_to_kernel(x1, x2, *, diagonal_spatial, compute_ntk, batch_axis=0, channel_axis=-1):
    """The input ``Kernel`` of a network from raw inputs ``x1`` and ``x2`` (arrays validated
    by ``check_inputs``; ``x2`` None for ``x1``)."""
    x1 = canonical_inputs(x1, batch_axis, channel_axis)
    if x2 is not None:
        x2 = canonical_inputs(x2, batch_axis, channel_axis)
    x1_is_x2 = x2 is None
    xp = get_xp(x1, x2)
    dtype = result_dtype(x1, x2)
    x1 = x1.astype(dtype, copy=False)
    x2 = x1 if x1_is_x2 else x2.astype(dtype, copy=False)
    n_spatial = x1.ndim - 2
    diagonal_spatial = bool(diagonal_spatial) or n_spatial == 0
    if n_spatial == 0:
        nngp = (x1 @ x2.T) / x1.shape[-1]
    else:
        nngp = xp.einsum(_outer_einsum(n_spatial, diagonal_spatial), x1, x2) / x1.shape[-1]
    if x1_is_x2:
        # cov1 is the batch diagonal of nngp itself, bit for bit: then k11 k22 - k12^2 is
        # exactly 0 on the diagonal and kinked duals (ReLU, Sign) see an exact correlation 1.
        cov1 = xp.einsum("ii...->i...", nngp).copy()
        cov2 = None
    else:
        cov1 = _self_cov(x1, diagonal_spatial)
        cov2 = _self_cov(x2, diagonal_spatial)
    ntk = xp.zeros_like(nngp) if compute_ntk else None
    return Kernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
                  shape1=tuple(x1.shape), shape2=tuple(x2.shape), x1_is_x2=x1_is_x2,
                  is_gaussian=False, diagonal_spatial=diagonal_spatial)
