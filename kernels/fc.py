"""Fused fully-connected chains: runs of affine maps and ABReLU-family duals on (N1, N2) kernels.

A chain such as ``Dense, Relu, Dense, Relu, Dense`` after the input kernel is, per entry
(i, j), a short scalar recursion (Lee et al. 2018, eq. 4 and 5; Jacot et al. 2018 for the NTK,
NTK parameterization):

    affine (W2, b2):  K <- W2 K + b2,              Theta <- K + W2 Theta
    abrelu (a, b):    K <- dual(k11, K, k22),       Theta <- Theta * dot(k11, K, k22)

where the variances k11 = cov1[i], k22 = cov2[j] of each input go through the same chain on
their own (``self_variance_chain``). The reference applies one operation at a time to whole
matrices (one pass over memory per operation); the fused routine applies the whole chain to
one row at a time while it sits in L1, and for a square kernel (x2 is None) only to the upper
triangle, mirrored at the end.

Data layout (for a GPU port): row-major (N1, N2) arrays; the per-operation variances are an
(n_ops, N) array per side, so row i reads var1[o, ii] (a scalar) and var2[o, j] (contiguous).
"""
import numpy as np
import numba

from ._jit import cpu_jit, cpu_pjit
from .dense import affine
from .activations.relu import abrelu_dual
from .fused.scalar import abrelu_entry, abrelu_constants

__all__ = ["OP_AFFINE", "OP_ABRELU", "fc_chain", "fc_chain_reference", "chain_arrays",
           "self_variance_chain", "is_fc_op"]

OP_AFFINE, OP_ABRELU = 0, 1
_KINDS = {"affine": OP_AFFINE, "abrelu": OP_ABRELU}


def is_fc_op(op):
    """Whether a fused-op descriptor is one this module runs (``affine`` or ``abrelu``)."""
    return op is not None and op[0] in _KINDS


def chain_arrays(ops, dtype):
    """Operation codes and parameters: kinds (n,), params (n, 2) in ``dtype``.

    affine -> (W2, b2); abrelu (a, b) -> (A, F) with A = (a^2+b^2)/2, F = (a-b)^2/(2 pi).
    """
    kinds = np.array([_KINDS[op[0]] for op in ops], dtype=np.int64)
    params = np.zeros((len(ops), 2), dtype=dtype)
    for n, op in enumerate(ops):
        params[n] = op[1:3] if op[0] == "affine" else abrelu_constants(op[1], op[2])
    return kinds, params


def _apply_one(xp, op, k11, k12, k22, theta, want_dot):
    """One operation of the reference, on arrays (k11, k22 broadcast against k12)."""
    if op[0] == "affine":
        k12 = affine(k12, op[1], op[2])
        return k12, (None if theta is None else k12 + theta * k12.dtype.type(op[1]))
    k_out, dot = abrelu_dual(k11, k12, k22, want_dot and theta is not None, op[1], op[2])
    return k_out, (None if theta is None else theta * dot)


def self_variance_chain(var, ops):
    """Variances of each input before every operation: (n_ops, N); and after the chain: (N,)."""
    out = np.empty((len(ops),) + var.shape, dtype=var.dtype)
    for n, op in enumerate(ops):
        out[n] = var
        var = _apply_one(np, op, var, var, var, None, False)[0]
    return out, var


def fc_chain_reference(xp, nngp, ntk, cov1, cov2, ops):
    """The unfused chain: one operation at a time on whole arrays (the layers' own path)."""
    for op in ops:
        v2 = cov1 if cov2 is None else cov2
        nngp, ntk = _apply_one(xp, op, cov1[:, None], nngp, v2[None, :], ntk, True)
        cov1 = _apply_one(xp, op, cov1, cov1, cov1, None, False)[0]
        cov2 = None if cov2 is None else _apply_one(xp, op, cov2, cov2, cov2, None, False)[0]
    return nngp, ntk, cov1, cov2


def fc_chain(nngp, ntk, cov1, cov2, ops, x1_is_x2=False):
    """Fused chain on NumPy arrays; same results as ``fc_chain_reference`` to rounding.

    ``ntk`` may be None (NNGP only). ``x1_is_x2`` (with ``cov2`` None) computes the upper
    triangle only and mirrors it. Returns new arrays (nngp, ntk, cov1, cov2).
    """
    kinds, params = chain_arrays(ops, nngp.dtype)
    var1, cov1_out = self_variance_chain(cov1, ops)
    var2, cov2_out = (var1, None) if cov2 is None else self_variance_chain(cov2, ops)
    sym = bool(x1_is_x2) and cov2 is None and nngp.shape[0] == nngp.shape[1]
    out_k = np.empty_like(nngp)
    has_ntk = ntk is not None
    out_t = np.empty_like(nngp) if has_ntk else np.empty((nngp.shape[0], 0), nngp.dtype)
    ntk_in = ntk if has_ntk else out_t
    _rows(np.ascontiguousarray(nngp), np.ascontiguousarray(ntk_in), var1, var2, kinds, params,
          sym, has_ntk, out_k, out_t)
    if sym:
        _mirror(out_k)
        if has_ntk:
            _mirror(out_t)
    return out_k, (out_t if has_ntk else None), cov1_out, cov2_out


@cpu_pjit
def _rows(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, out_k, out_t):
    n1, n2 = nngp.shape
    for i in numba.prange(n1):
        ii = np.int64(i)
        j0 = ii if sym else np.int64(0)
        kr = out_k[ii, j0:]
        kr[:] = nngp[ii, j0:]
        tr = out_t[ii, j0:] if has_ntk else out_t[ii, :0]
        if has_ntk:
            tr[:] = ntk[ii, j0:]
        for o in range(kinds.shape[0]):
            if kinds[o] == 0:
                _affine_row(kr, tr, params[o, 0], params[o, 1], has_ntk)
            else:
                _abrelu_row(kr, tr, var1[o, ii], var2[o, j0:], params[o, 0], params[o, 1],
                            has_ntk)


@cpu_jit
def _affine_row(kr, tr, w2, b2, has_ntk):
    """Loops start at 0 over views, so that Numba/LLVM vectorise them (an offset start does not)."""
    if has_ntk:
        for j in range(kr.shape[0]):
            k = w2 * kr[j] + b2
            kr[j] = k
            tr[j] = k + w2 * tr[j]
    else:
        for j in range(kr.shape[0]):
            kr[j] = w2 * kr[j] + b2


@cpu_jit
def _abrelu_row(kr, tr, v1, v2, A, F, has_ntk):
    if has_ntk:
        for j in range(kr.shape[0]):
            k, dot = abrelu_entry(kr[j], v1 * v2[j], A, F)
            kr[j] = k
            tr[j] = tr[j] * dot
    else:
        for j in range(kr.shape[0]):
            kr[j] = abrelu_entry(kr[j], v1 * v2[j], A, F)[0]


@cpu_pjit
def _mirror(m):
    """Copy the upper triangle onto the lower one, in cache-sized tiles."""
    n = m.shape[0]
    tile = 64
    nt = (n + tile - 1) // tile
    for bi in numba.prange(nt):
        for bj in range(bi + 1):
            for i in range(bi * tile, min(n, bi * tile + tile)):
                for j in range(bj * tile, min(i, bj * tile + tile)):
                    m[i, j] = m[j, i]
