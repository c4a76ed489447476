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

from ._alloc import touched_empty
from ._jit import cpu_jit, cpu_pjit
from .dense import affine
from .activations.relu import abrelu_dual
from .fused.scalar import abrelu_entry, abrelu_constants
from .ops import Affine, Dual

__all__ = ["OP_AFFINE", "OP_ABRELU", "fc_chain", "fc_chain_reference", "chain_arrays",
           "self_variance_chain", "is_fc_op"]

OP_AFFINE, OP_ABRELU = 0, 1


def is_fc_op(op):
    """Whether a typed operation is one this module runs (``Affine`` or an ABReLU ``Dual``)."""
    return isinstance(op, Affine) or (isinstance(op, Dual) and op.kind == "abrelu")


def chain_arrays(ops, dtype):
    """Operation codes and parameters: kinds (n,), params (n, 2) in ``dtype``.

    Affine -> (W2, b2); ABReLU (a, b) -> (A, F) with A = (a^2+b^2)/2, F = (a-b)^2/(2 pi).
    """
    kinds = np.array([OP_AFFINE if isinstance(op, Affine) else OP_ABRELU for op in ops],
                     dtype=np.int64)
    params = np.zeros((len(ops), 2), dtype=dtype)
    for n, op in enumerate(ops):
        params[n] = (op.W2, op.b2) if isinstance(op, Affine) else abrelu_constants(*op.params)
    return kinds, params


def _apply_one(xp, op, k11, k12, k22, theta, want_dot):
    """One operation of the reference, on arrays (k11, k22 broadcast against k12)."""
    if isinstance(op, Affine):
        k12 = affine(k12, op.W2, op.b2)
        return k12, (None if theta is None else k12 + theta * k12.dtype.type(op.W2))
    a, b = op.params
    k_out, dot = abrelu_dual(k11, k12, k22, want_dot and theta is not None, a, b)
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


def fc_chain(nngp, ntk, cov1, cov2, ops, x1_is_x2=False, want_ntk=None, in_div=1.0,
             overwrite_nngp=False):
    """Fused chain on NumPy arrays; same results as ``fc_chain_reference`` to rounding.

    ``x1_is_x2`` (with ``cov2`` None) computes the upper triangle only and mirrors it.
    ``ntk=None`` with ``want_ntk`` means a zero input NTK (raw inputs); ``nngp`` is divided
    by ``in_div`` on the way in (``d`` for a Gram matrix ``x1 x2^T``: the input kernel, with
    the reference's rounding).
    ``overwrite_nngp``: write the output NNGP into ``nngp`` itself (a C-contiguous buffer the
    caller owns: each entry is read once, then overwritten): one fresh pair-sized array less,
    which matters because a fresh array's pages are faulted in (and zeroed) on first touch.
    Returns the arrays ``(nngp, ntk, cov1, cov2)`` and whether they are all finite.
    """
    want_ntk = ntk is not None if want_ntk is None else bool(want_ntk)
    kinds, params = chain_arrays(ops, nngp.dtype)
    var1, cov1_out = self_variance_chain(cov1, ops)
    var2, cov2_out = (var1, None) if cov2 is None else self_variance_chain(cov2, ops)
    sym = bool(x1_is_x2) and cov2 is None and nngp.shape[0] == nngp.shape[1]
    out_k = nngp if overwrite_nngp and nngp.flags.c_contiguous else \
        touched_empty(nngp.shape, nngp.dtype)
    out_t = touched_empty(nngp.shape if want_ntk else (nngp.shape[0], 0), nngp.dtype)
    ntk_in = ntk if ntk is not None else np.empty((nngp.shape[0], 0), nngp.dtype)
    bad = np.zeros(nngp.shape[0], dtype=np.bool_)
    small = out_k.size < _PARALLEL_MIN
    rows, mirror = (_rows_serial, _mirror_serial) if small else (_rows, _mirror)
    rows(np.ascontiguousarray(nngp), np.ascontiguousarray(ntk_in), var1, var2, kinds, params,
         sym, want_ntk, nngp.dtype.type(in_div), out_k, out_t, bad)
    if sym:
        mirror(out_k, out_t)
    finite = not bad.any() and np.isfinite(cov1_out).all() and \
        (cov2_out is None or np.isfinite(cov2_out).all())
    return out_k, (out_t if want_ntk else None), cov1_out, cov2_out, bool(finite)


#: Below this many entries the serial twins run: waking the worker threads of a parallel
#: region costs more than the work (milliseconds when other processes hold the cores).
_PARALLEL_MIN = 1 << 16


@cpu_pjit
def _rows(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad):
    """Rows in pairs (i, n1 - 1 - i): with the upper triangle only, row i has n2 - i entries,
    so each pair has about the same work and the threads (contiguous blocks of the prange)
    stay balanced."""
    n1 = nngp.shape[0]
    for p in numba.prange((n1 + 1) // 2):
        _row_pair(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad,
                  np.int64(p))


@cpu_jit
def _rows_serial(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad):
    """``_rows`` in the calling thread (small problems). A separate function, not
    ``cpu_jit(_rows.py_func)``: Numba's on-disk cache keys on the Python function, so two
    dispatchers of one function overwrite each other's cached code (the parallel one then
    loaded the serial build)."""
    for p in range((nngp.shape[0] + 1) // 2):
        _row_pair(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad,
                  np.int64(p))


@cpu_jit
def _row_pair(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad, i):
    n1 = nngp.shape[0]
    _row(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad, i)
    if n1 - 1 - i != i:
        _row(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad,
             n1 - 1 - i)


@cpu_jit
def _row(nngp, ntk, var1, var2, kinds, params, sym, has_ntk, in_div, out_k, out_t, bad, ii):
    """The whole chain on row ``ii`` (from the diagonal when ``sym``)."""
    n2 = nngp.shape[1]
    j0 = ii if sym else np.int64(0)
    kr = out_k[ii, j0:]
    src = nngp[ii, j0:]
    for j in range(kr.shape[0]):
        kr[j] = src[j] / in_div
    tr = out_t[ii, j0:] if has_ntk else out_t[ii, :0]
    if has_ntk:
        if ntk.shape[1] == n2:
            tr[:] = ntk[ii, j0:]
        else:
            tr[:] = 0
    for o in range(kinds.shape[0]):
        if kinds[o] == 0:
            _affine_row(kr, tr, params[o, 0], params[o, 1], has_ntk)
        else:
            _abrelu_row(kr, tr, var1[o, ii], var2[o, j0:], params[o, 0], params[o, 1],
                        has_ntk)
    bad[ii] = _not_finite(kr) or _not_finite(tr)


@cpu_jit
def _not_finite(row):
    """Whether a row holds NaN or Inf (x - x is 0 exactly when x is finite)."""
    flag = False
    for j in range(row.shape[0]):
        flag |= (row[j] - row[j]) != 0
    return flag


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
def _mirror(a, b):
    """Copy the upper triangles of ``a`` and ``b`` (``b`` may have no columns) onto their lower
    ones, in cache-sized tiles; tile rows in pairs (bi, nt - 1 - bi) to balance the threads."""
    n = a.shape[0]
    tile = 64
    nt = (n + tile - 1) // tile
    for p in numba.prange((nt + 1) // 2):
        bi = np.int64(p)
        _mirror_tiles(a, b, bi, tile)
        if nt - 1 - bi != bi:
            _mirror_tiles(a, b, nt - 1 - bi, tile)


@cpu_jit
def _mirror_serial(a, b):
    """``_mirror`` in the calling thread (see ``_rows_serial``)."""
    tile = 64
    for bi in range((a.shape[0] + tile - 1) // tile):
        _mirror_tiles(a, b, np.int64(bi), tile)


@cpu_jit
def _mirror_tiles(a, b, bi, tile):
    n = a.shape[0]
    both = b.shape[1] == n
    for bj in range(bi + 1):
        for i in range(bi * tile, min(n, bi * tile + tile)):
            for j in range(bj * tile, min(i, bj * tile + tile)):
                a[i, j] = a[j, i]
                if both:
                    b[i, j] = b[j, i]

