"""Where a finished plane goes: pooled into the next block, summed, or stored.

Layouts are those of ``planes``. The *compact layout* of a block's input keeps the planes
``|dh| <= Rh, |dw| <= Rw`` one after the other (plane ``d`` at ``coff[d]``, rows of ``pw``
entries): exactly the entries the block needs, no padding.

Average pooling of a full covariance (Novak et al. 2019, section 3; NT's ``_pool_kernel``):
``K'[Y, Y', X, X'] = sum_{p, q, u, v} K[sY + p - lo, sY' + q - lo, ...] / (n(Y) n(Y') ...)``.
Input plane ``dh`` feeds output plane ``DH = (dh - p + q) / s`` through the window offsets with
``p - q = dh (mod s)``, so each finished plane is *scattered* into the next block's compact
layout while it is still in cache (no full-resolution pair tensor is ever stored).
"""
import numpy as np

from .._jit import cpu_jit

__all__ = ["compact_offsets", "pool_scatter_plane", "normalize_compact", "finish_strided_conv",
           "skew_to_compact", "unskew_from_compact", "store_compact_plane", "store_diag_plane"]


def compact_offsets(H, W, Rh, Rw):
    """Offsets of the planes of a compact layout, shape ``(2 Rh + 1, 2 Rw + 1)``, and its size."""
    off = np.zeros((2 * Rh + 1, 2 * Rw + 1), dtype=np.int64)
    n = 0
    for a in range(2 * Rh + 1):
        for b in range(2 * Rw + 1):
            off[a, b] = n
            n += (H - abs(a - Rh)) * (W - abs(b - Rw))
    return off, n


@cpu_jit
def _ceil_div(a, b):
    return -((-a) // b)


@cpu_jit
def _range(o, n, p, lo, s, D, n_out):
    """Output positions Y whose window entry p lands in rows [o, o + n) of the input plane."""
    y0 = max(0, D, _ceil_div(o - p + lo, s))
    y1 = min(n_out, n_out + D, (o + n - 1 - p + lo) // s + 1)
    return y0, y1


@cpu_jit
def pool_scatter_plane(K, P, dh, dw, ph, pw, pool, nxt, coff):
    """Add plane (dh, dw) (local size ph x pw) into the pooled compact layout ``nxt``.

    ``pool = (wh, ww, sh, sw, lo_h, lo_w, Hn, Wn, Rnh, Rnw, diag)``; ``coff`` the next
    layout's offsets ``(2 Rnh + 1, 2 Rnw + 1)``. Sums only: ``normalize_compact`` divides
    afterwards. ``diag``: a strided convolution, whose shared filter takes the same window
    offset on both positions of a pair (p == q, u == v) instead of every combination."""
    wh, ww, sh, sw, lo_h, lo_w, Hn, Wn, Rnh, Rnw = (pool[0], pool[1], pool[2], pool[3], pool[4],
                                                   pool[5], pool[6], pool[7], pool[8], pool[9])
    diag = pool[10] == 1
    oy, ox = max(dh, 0), max(dw, 0)
    S = pw + 2 * P
    for p in range(wh):
        for q in range(wh):
            if (p - q - dh) % sh != 0 or (diag and p != q):
                continue
            DH = (dh - p + q) // sh
            if abs(DH) > Rnh:
                continue
            Y0, Y1 = _range(oy, ph, p, lo_h, sh, DH, Hn)
            for u in range(ww):
                for v in range(ww):
                    if (u - v - dw) % sw != 0 or (diag and u != v):
                        continue
                    DW = (dw - u + v) // sw
                    if abs(DW) > Rnw:
                        continue
                    X0, X1 = _range(ox, pw, u, lo_w, sw, DW, Wn)
                    if X1 <= X0:
                        continue
                    pwn = Wn - abs(DW)
                    base = coff[DH + Rnh, DW + Rnw] - max(DW, 0) + X0
                    c0 = P + sw * X0 + u - lo_w - ox
                    for Y in range(Y0, Y1):
                        r0 = (P + sh * Y + p - lo_h - oy) * S + c0
                        dst = nxt[base + (Y - max(DH, 0)) * pwn:
                                  base + (Y - max(DH, 0)) * pwn + X1 - X0]
                        src = K[r0:r0 + sw * (X1 - X0):sw]
                        for m in range(X1 - X0):
                            dst[m] += src[m]


@cpu_jit
def normalize_compact(buf, coff, Hn, Wn, Rnh, Rnw, inv_h, inv_w):
    """Divide each pooled entry by its window counts: ``inv_h[Y] inv_h[Y'] inv_w[X] inv_w[X']``."""
    for a in range(2 * Rnh + 1):
        DH = a - Rnh
        for b in range(2 * Rnw + 1):
            DW = b - Rnw
            ph, pw = Hn - abs(DH), Wn - abs(DW)
            oy, ox = max(DH, 0), max(DW, 0)
            base = coff[a, b]
            for r in range(ph):
                y = oy + r
                fy = inv_h[y] * inv_h[y - DH]
                row = buf[base + r * pw:base + (r + 1) * pw]
                iw = inv_w[ox:ox + pw]
                iw2 = inv_w[ox - DW:ox - DW + pw]
                for c in range(pw):
                    row[c] *= fy * iw[c] * iw2[c]


@cpu_jit
def finish_strided_conv(kbuf, tbuf, size, scale, b2, has_ntk):
    """After a strided convolution's sums: ``K' = scale S_K + b2``, ``T' = K' + scale S_T``
    over the whole compact layout (``scale = W2 / f``)."""
    k = kbuf[:size]
    if has_ntk:
        t = tbuf[:size]
        for i in range(size):
            kk = scale * k[i] + b2
            k[i] = kk
            t[i] = kk + scale * t[i]
    else:
        for i in range(size):
            k[i] = scale * k[i] + b2


@cpu_jit
def store_diag_plane(out, K, ph, pw, P):
    """``out[y, x] = plane (0, 0)[y, x]`` (the spatial-diagonal form)."""
    S = pw + 2 * P
    for r in range(ph):
        row = out[r, :pw]
        src = K[(P + r) * S + P:(P + r) * S + P + pw]
        for c in range(pw):
            row[c] = src[c]


@cpu_jit
def skew_to_compact(src, buf, coff, Rh, Rw):
    """A pair tensor in Neural Tangents' layout ``src[y, y', x, x']`` -> the compact plane
    layout (planes ``|dh| <= Rh``, ``|dw| <= Rw``). Slab by slab: slab ``(y, y')`` (W x W)
    holds row ``y - oy`` of every plane ``(y - y', dw)``; read in cache, each destination row
    written contiguously (reading planes straight from ``src`` would touch a new cache line
    per entry, W + 1 entries apart)."""
    H, W = src.shape[0], src.shape[2]
    for y in range(H):
        for y2 in range(H):
            dh = y - y2
            if abs(dh) > Rh:
                continue
            r = y - max(dh, 0)
            slab = src[y, y2]
            for dw in range(-Rw, Rw + 1):
                pw, ox = W - abs(dw), max(dw, 0)
                base = coff[dh + Rh, dw + Rw] + r * pw
                dst = buf[base:base + pw]
                for c in range(pw):
                    dst[c] = slab[ox + c, ox + c - dw]


@cpu_jit
def unskew_from_compact(buf, coff, out, out_t, transposed):
    """The inverse of ``skew_to_compact`` for a full output (every offset): slab by slab into
    ``out[y, y', x, x']``, and when ``transposed`` into ``out_t[y', y, x', x]`` too (the same
    pair seen from the other image)."""
    H, W = out.shape[0], out.shape[2]
    Rh, Rw = H - 1, W - 1
    for y in range(H):
        for y2 in range(H):
            dh = y - y2
            r = y - max(dh, 0)
            slab = out[y, y2]
            tslab = out_t[y2, y]
            for dw in range(-Rw, Rw + 1):
                pw, ox = W - abs(dw), max(dw, 0)
                base = coff[dh + Rh, dw + Rw] + r * pw
                src = buf[base:base + pw]
                for c in range(pw):
                    slab[ox + c, ox + c - dw] = src[c]
                if transposed:
                    for c in range(pw):
                        tslab[ox + c - dw, ox + c] = src[c]


@cpu_jit
def store_compact_plane(K, P, dh, dw, ph, pw, buf, coff, Rh, Rw):
    """Plane rows (scratch layout) -> the compact layout (the reverse of
    ``planes.load_compact_plane``)."""
    S = pw + 2 * P
    base = coff[dh + Rh, dw + Rw]
    for r in range(ph):
        src = K[(P + r) * S + P:(P + r) * S + P + pw]
        dst = buf[base + r * pw:base + (r + 1) * pw]
        for c in range(pw):
            dst[c] = src[c]
