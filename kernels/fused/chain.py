"""Entry points of the fused spatial engine (``engine.run_pairs`` does the work).

Order of work, for either source:

1. *Self runs*, one per image: the pair (i, i), half of its planes (plane (-d) of an image
   with itself equals plane d entry for entry). Plane (0, 0) of each block comes first and
   records, before every activation, the image's per-position variances: what the
   activation of every pair with this image needs, computed once per image. The self runs
   give cov1/cov2, and from raw images also the diagonal of a square kernel.
2. *Pair runs*: every (i, j) of x1 x x2, or i < j when x2 is x1 (stored at (j, i) too,
   transposed). From pair tensors with x2 = x1 the pairs (i, i) are computed like the others
   (from nngp[i, i], which the layer path keeps apart from cov1[i]).

Memory: per thread, a few plane buffers and two compact layouts of the largest pooled block;
beyond that only the outputs the caller asked for.
"""
import numba
import numpy as np

from .engine import run_pairs

__all__ = ["spatial_chain", "spatial_chain_kernel"]


def _outputs(prog, n1, n2, n_q, dtype):
    """(out_s, out_f, out_d): the one the program's end needs, size-0 stand-ins for the rest."""
    H, W = prog.out_hw
    s = np.zeros((n_q, n1, n2) if prog.end in ("gap", "flatten") else (n_q, 0, 0), dtype)
    f = np.zeros((n_q, n1, n2, H, H, W, W) if prog.end == "full" else (n_q, 0, 0, 0, 0, 0, 0),
                 dtype)
    d = np.zeros((n_q, n1, n2, H, W) if prog.end == "diag" else (n_q, 0, 0, 0, 0), dtype)
    return s, f, d


def _pick(outs, prog):
    return outs[0] if prog.end in ("gap", "flatten") else outs[1] if prog.end == "full" \
        else outs[2]


def _workspaces(prog, dtype, from_pairs=False):
    """Per thread: group buffers, accumulators, the plane slots of residual branches, the
    registers of two blocks (the current one's and the next one's, K and Theta each, sized
    for the largest compact layout: also block 0's when it is read from pair tensors, and a
    full output's), plane index lists."""
    n_threads = numba.get_num_threads()
    L = prog.scratch_len
    comp = max(prog.comp_len, prog.end_len, prog.comp0_len if from_pairs else 0)
    return (np.zeros((n_threads, 4, L), dtype), np.zeros((n_threads, 2, L), dtype),
            np.zeros((n_threads, prog.n_slots, 2, L), dtype),
            np.zeros((n_threads, 2, prog.n_regs, 2, comp), dtype),
            np.zeros((n_threads, 2, prog.group_max), np.int64))


#: Below this many covariance entries (pairs x entries of the first block) one thread runs
#: the call: waking a second one costs milliseconds when other processes hold the cores.
PARALLEL_MIN = 1 << 17


def _call(pairs, is_self, sym, source, var, prog, inv_c, has_ntk, ws, outs):
    H, W, Rh, Rw = prog.blocks[0, 2:6]
    work = len(pairs) * H * W * (2 * Rh + 1) * (2 * Rw + 1)
    threads = numba.get_num_threads()
    if work < PARALLEL_MIN:
        numba.set_num_threads(1)
    try:
        run_pairs(pairs, is_self, sym, *source, var, prog.ops, prog.fp, prog.blocks,
                  prog.planes, prog.groups, prog.coff, prog.pool, prog.treg, prog.inv_h,
                  prog.inv_w, prog.tparams, prog.end_coff, prog.pad, inv_c, has_ntk, *ws, *outs)
    finally:
        numba.set_num_threads(threads)


def _self_pairs(n_img):
    idx = np.arange(n_img, dtype=np.int64)
    return np.stack([idx, idx, idx, np.zeros_like(idx)], axis=1)


def _pair_list(n1, n2, same, diagonal):
    """Rows (a, b, oi, oj): image indices and output position (x2 images follow x1's)."""
    if same:
        i, j = np.triu_indices(n1, 0 if diagonal else 1)
        return np.stack([i, j, i, j], axis=1).astype(np.int64)
    i, j = np.divmod(np.arange(n1 * n2, dtype=np.int64), n2)
    return np.stack([i, n1 + j, i, j], axis=1)


def _no_pairs(dtype):
    return np.zeros((0, 0, 1, 1, 1, 1), dtype)


def spatial_chain(prog, x1, x2, want_ntk):
    """Run ``prog`` on raw images ``x1`` (N1, H, W, C) and ``x2`` (N2, H, W, C) or None (x1).

    Returns ``(nngp, ntk or None, cov1, cov2 or None)`` shaped as the program's end asks:
    (N1, N2) after GlobalAvgPool/Flatten, (N1, N2, H, H, W, W) full, (N1, N2, H, W) diagonal.
    """
    dtype, n1, same = x1.dtype, x1.shape[0], x2 is None
    imgs = x1 if same else np.concatenate([x1, x2])
    xt = np.ascontiguousarray(np.moveaxis(imgs, -1, 1))
    n_img, inv_c = xt.shape[0], dtype.type(1.0 / xt.shape[1])
    source = (xt, _no_pairs(dtype), _no_pairs(dtype), np.zeros((0, 1, 1, 1, 1), dtype))
    var = np.zeros((n_img, prog.var_len), dtype)
    ws = _workspaces(prog, dtype)
    self_ntk = bool(want_ntk and same)
    selfs = _outputs(prog, n_img, 1, 1 + self_ntk, dtype)
    _call(_self_pairs(n_img), True, False, source, var, prog, inv_c, self_ntk, ws, selfs)
    n2 = n1 if same else n_img - n1
    outs = _outputs(prog, n1, n2, 1 + bool(want_ntk), dtype)
    _call(_pair_list(n1, n2, same, False), False, same, source, var, prog, inv_c,
          bool(want_ntk), ws, outs)
    self_out, out = _pick(selfs, prog)[:, :, 0], _pick(outs, prog)
    if same:
        ii = np.arange(n1)
        out[:, ii, ii] = self_out[:, :n1]
    cov2 = None if same else self_out[0, n1:]
    return out[0], (out[1] if want_ntk else None), self_out[0, :n1], cov2


def spatial_chain_kernel(prog, nngp, ntk, cov1, cov2, x1_is_x2, want_ntk):
    """Run ``prog`` on full spatial covariances in Neural Tangents' layout: ``nngp``/``ntk``
    (N1, N2, H, H, W, W), ``cov1`` (N1, H, H, W, W), ``cov2`` the same or None.
    ``want_ntk`` needs ``ntk``. Returns ``(nngp, ntk or None, cov1, cov2 or None)``."""
    dtype = nngp.dtype
    n1, n2 = nngp.shape[:2]
    covs = cov1 if cov2 is None else np.concatenate([cov1, cov2])
    n_img = covs.shape[0]
    has_ntk = bool(want_ntk and ntk is not None)
    source = (np.zeros((0, 1, 1, 1), dtype), np.ascontiguousarray(nngp),
              np.ascontiguousarray(ntk) if has_ntk else _no_pairs(dtype),
              np.ascontiguousarray(covs))
    var = np.zeros((n_img, prog.var_len), dtype)
    ws = _workspaces(prog, dtype, from_pairs=True)
    selfs = _outputs(prog, n_img, 1, 1, dtype)
    _call(_self_pairs(n_img), True, False, source, var, prog, dtype.type(1), False, ws, selfs)
    same = bool(x1_is_x2) and cov2 is None
    outs = _outputs(prog, n1, n2, 1 + has_ntk, dtype)
    _call(_pair_list(n1, n2, same, True), False, same, source, var, prog, dtype.type(1),
          has_ntk, ws, outs)
    self_out, out = _pick(selfs, prog)[0, :, 0], _pick(outs, prog)
    return out[0], (out[1] if has_ntk else None), self_out[:n1], \
        (None if cov2 is None else self_out[n1:])
