"""Per-plane steps of the fused spatial engine: plain scalar loops over one offset plane.

Data layout (shared with ``emit`` and ``engine``; the unit a GPU port maps to one CUDA block):

- A pair tensor ``K[y, y', x, x']`` (one image pair, full spatial covariance) splits into
  offset planes ``d = (dh, dw) = (y - y', x - x')``. Plane ``d`` holds the entries with
  ``y in [oy, oy + ph)``, ``x in [ox, ox + pw)``, where ``oy = max(dh, 0)``,
  ``ph = H - |dh|`` (same for x); its *local* entry ``(r, c)`` is ``y = oy + r``, ``x = ox + c``.
  The spatial diagonal form is plane (0, 0).
- While a plane is worked on it lives in a flat scratch buffer with a ring of width ``P``
  (the largest 'SAME' padding) and row stride ``S = pw + 2P``: local ``(r, c)`` is at
  ``(P + r) S + P + c``. With the ring zeroed, a stride-1 convolution needs no bounds tests:
  it maps local ``(r, c)`` to local ``(r - lo + t, c - lo + u)`` of the *same* plane, and the
  out-of-plane entries are exactly the zero padding of the input (Novak et al. 2019, eq. 7).
  Because the stride is the plane's own width (plus the ring), whole-plane passes are single
  flat loops of about ``ph S`` entries (ring columns carry junk, re-zeroed before a
  convolution reads them); steps that read per-position data go row by row.
- Per-image variance maps (for the dual activations) are flat rows ``var[img, off + y W + x]``;
  an activation on plane ``d`` reads image a at ``(y, x)`` and image b at ``(y - dh, x - dw)``.

Every inner loop runs from 0 over a contiguous view: Numba vectorises those (a loop with a
variable start does not).
"""
import numpy as np

from .._jit import cpu_jit
from .scalar import abrelu_entry

__all__ = ["zero_ring", "zero_ring_group", "tall_rows", "plane_row0", "load_images_plane",
           "conv_group", "affine_plane", "abrelu_group", "record_variances", "load_compact_plane",
           "interior_sum"]


@cpu_jit
def zero_ring(buf, ph, pw, P):
    """Zero the ring of width ``P`` around the ``ph x pw`` interior (stride ``pw + 2P``)."""
    if P == 0:
        return
    S = pw + 2 * P
    buf[:P * S] = 0
    buf[(P + ph) * S:(ph + 2 * P) * S] = 0
    for r in range(P, P + ph):
        for c in range(P):
            buf[r * S + c] = 0
            buf[r * S + P + pw + c] = 0


@cpu_jit
def tall_rows(phs, n, P):
    """Interior height of a group seen as one tall plane: the planes and the P ring rows
    between them (group layout: P ring rows, plane 0, P ring rows, plane 1, ..., P ring rows)."""
    t = (n - 1) * P
    for g in range(n):
        t += phs[g]
    return t


@cpu_jit
def plane_row0(phs, g, P):
    """First buffer row of plane ``g``'s top ring in the group layout."""
    r = 0
    for m in range(g):
        r += phs[m] + P
    return r


@cpu_jit
def zero_ring_group(buf, phs, n, pw, P):
    """Zero every ring of a group: the P rows above, between and below the planes, and the
    P columns on each side of every interior row."""
    if P == 0:
        return
    S = pw + 2 * P
    r = 0
    for g in range(n):
        buf[r * S:(r + P) * S] = 0
        r += P
        for q in range(phs[g]):
            for c in range(P):
                buf[(r + q) * S + c] = 0
                buf[(r + q) * S + P + pw + c] = 0
        r += phs[g]
    buf[r * S:(r + P) * S] = 0


@cpu_jit
def load_images_plane(xa, xb, dh, dw, ph, pw, P, inv_c, K):
    """Input covariance of one image pair on plane (dh, dw):
    ``K[r, c] = sum_ch xa[ch, y, x] xb[ch, y - dh, x - dw] / C`` (images channels-first)."""
    oy, ox = max(dh, 0), max(dw, 0)
    n_ch, S = xa.shape[0], pw + 2 * P
    for r in range(ph):
        y = oy + r
        out = K[(P + r) * S + P:(P + r) * S + P + pw]
        a = xa[0, y, ox:ox + pw]
        b = xb[0, y - dh, ox - dw:ox - dw + pw]
        for c in range(pw):
            out[c] = a[c] * b[c]
        for ch in range(1, n_ch):
            a = xa[ch, y, ox:ox + pw]
            b = xb[ch, y - dh, ox - dw:ox - dw + pw]
            for c in range(pw):
                out[c] += a[c] * b[c]
        for c in range(pw):
            out[c] *= inv_c


@cpu_jit
def load_compact_plane(src, base, ph, pw, P, K):
    """Copy plane rows ``src[base + r pw + c]`` (the compact layout of ``emit``) into ``K``."""
    S = pw + 2 * P
    for r in range(ph):
        row = src[base + r * pw:base + (r + 1) * pw]
        out = K[(P + r) * S + P:(P + r) * S + P + pw]
        for c in range(pw):
            out[c] = row[c]


@cpu_jit
def _vsum(src, a, n, fh, start, S):
    """Vertical pass of a box sum: ``a[i] = sum_t src[start + t S + i]`` (t < fh), added in
    the order t = 0, 1, ...; a 3-tap filter in one pass instead of three."""
    first = src[start:start + n]
    if fh == 3:
        r1 = src[start + S:start + S + n]
        r2 = src[start + 2 * S:start + 2 * S + n]
        for i in range(n):
            a[i] = (first[i] + r1[i]) + r2[i]
        return
    for i in range(n):
        a[i] = first[i]
    for t in range(1, fh):
        row = src[start + t * S:start + t * S + n]
        for i in range(n):
            a[i] += row[i]


@cpu_jit
def _hsum_affine(a, out, other, m, fw, scale, b2, mode):
    """Horizontal pass of a box sum ``s[i] = sum_u a[i + u]`` (u < fw, in that order) with the
    convolution's affine map applied on the way out (one pass, not two):
    mode 0: ``out = scale s + b2``; mode 1 (Theta, ``other`` = K'): ``out = other + scale s``;
    mode 2 (Theta of raw inputs is zero): ``out = other = scale s + b2``."""
    if fw == 3:
        a1, a2 = a[1:1 + m], a[2:2 + m]
        if mode == 0:
            for i in range(m):
                out[i] = scale * ((a[i] + a1[i]) + a2[i]) + b2
        elif mode == 1:
            for i in range(m):
                out[i] = other[i] + scale * ((a[i] + a1[i]) + a2[i])
        else:
            for i in range(m):
                kk = scale * ((a[i] + a1[i]) + a2[i]) + b2
                out[i] = kk
                other[i] = kk
        return
    for i in range(m):
        out[i] = a[i]
    for u in range(1, fw):
        sh = a[u:u + m]
        for i in range(m):
            out[i] += sh[i]
    _affine_mode(out, other, m, scale, b2, mode)


@cpu_jit
def _affine_mode(out, other, m, scale, b2, mode):
    """The affine map of ``_hsum_affine`` on an already summed ``out``."""
    if mode == 0:
        for i in range(m):
            out[i] = scale * out[i] + b2
    elif mode == 1:
        for i in range(m):
            out[i] = other[i] + scale * out[i]
    else:
        for i in range(m):
            kk = scale * out[i] + b2
            out[i] = kk
            other[i] = kk


@cpu_jit
def _box_same(src, dst, other, acc, ph, pw, fh, fw, lo_h, lo_w, P, scale, b2, mode):
    """'SAME' box sum over the flat interior rows ``[P S, (P + ph) S)`` with the affine map
    of ``_hsum_affine`` (``other``: K' for mode 1, Theta' for mode 2, unused for mode 0): a
    vertical pass into ``acc``, then a horizontal one. Interior entries read ring entries
    (zero) where the filter leaves the plane; ring outputs are junk and the first/last P ring
    entries are not written."""
    S = pw + 2 * P
    n = ph * S
    _vsum(src, acc, n, fh, (P - lo_h) * S, S)
    m = n - 2 * P
    lo = P * S + P
    _hsum_affine(acc[P - lo_w:P - lo_w + m + fw - 1], dst[lo:lo + m], other[lo:lo + m], m, fw,
                 scale, b2, mode)


@cpu_jit
def _box_valid(src, dst, acc, ph_out, pw_in, pw_out, fh, fw, P):
    """'VALID' box sum (the output plane is smaller, so its stride changes: row by row)."""
    S_in, S_out = pw_in + 2 * P, pw_out + 2 * P
    for r in range(ph_out):
        a = acc[:pw_in]
        first = src[(P + r) * S_in + P:(P + r) * S_in + P + pw_in]
        for c in range(pw_in):
            a[c] = first[c]
        for t in range(1, fh):
            row = src[(P + r + t) * S_in + P:(P + r + t) * S_in + P + pw_in]
            for c in range(pw_in):
                a[c] += row[c]
        out = dst[(P + r) * S_out + P:(P + r) * S_out + P + pw_out]
        for c in range(pw_out):
            out[c] = a[c]
        for u in range(1, fw):
            sh = a[u:u + pw_out]
            for c in range(pw_out):
                out[c] += sh[c]


@cpu_jit
def conv_group(Kin, Tin, Kout, Tout, acc, dhs, phs, n, pw_in, fh, fw, lo_h, lo_w, valid, P,
               scale, b2, has_ntk, t_zero):
    """Stride-1 'ntk' convolution on a group of planes (Novak et al. 2019, eq. 7; Arora et
    al. 2019):

        K' = (W2 / f) sum_{filter} K + b2,        Theta' = K' + (W2 / f) sum_{filter} Theta

    with ``scale = W2 / (fh fw)``. 'SAME' (front padding ``lo = (f - 1) // 2``) keeps every
    plane's size, so the group is one tall plane whose in-between ring rows are zero: one flat
    pass. 'VALID' (``lo = 0``) shrinks each plane by ``f - 1``, plane by plane; ``dhs`` and
    ``phs`` are updated in place to the ``n`` planes that remain (returned with the width).
    ``t_zero``: the input Theta is zero (the raw inputs), so Theta' = K'."""
    ntk_box = has_ntk and not t_zero
    zero_ring_group(Kin, phs, n, pw_in, P)
    if ntk_box:
        zero_ring_group(Tin, phs, n, pw_in, P)
    if valid:
        pw = pw_in - fw + 1
        if ntk_box:
            _box_valid_group(Tin, Tout, acc[1], dhs, phs, n, pw_in, fh, fw, P, True)
        n = _box_valid_group(Kin, Kout, acc[0], dhs, phs, n, pw_in, fh, fw, P, False)
        if n > 0 and pw > 0:
            tall = tall_rows(phs, n, P)
            if t_zero and has_ntk:
                _scale_copy(Kout, Tout, tall, pw, P, scale, b2)
            else:
                affine_plane(Kout, Tout, tall, pw, P, scale, b2, has_ntk)
        return n, pw
    tall = tall_rows(phs, n, P)
    _box_same(Kin, Kout, Tout, acc[0], tall, pw_in, fh, fw, lo_h, lo_w, P, scale, b2,
              2 if t_zero and has_ntk else 0)
    if ntk_box:
        _box_same(Tin, Tout, Kout, acc[1], tall, pw_in, fh, fw, lo_h, lo_w, P, scale, b2, 1)
    return n, pw_in


@cpu_jit
def _scale_copy(K, T, ph, pw, P, scale, b2):
    """``K' = scale K + b2`` and ``Theta' = K'`` (the first layer's NTK)."""
    S = pw + 2 * P
    k = K[P * S:(P + ph) * S]
    t = T[P * S:(P + ph) * S]
    for i in range(ph * S):
        kk = scale * k[i] + b2
        k[i] = kk
        t[i] = kk


@cpu_jit
def _box_valid_group(src, dst, acc, dhs, phs, n, pw_in, fh, fw, P, keep):
    """'VALID' box sums plane by plane (each plane loses fh - 1 rows and fw - 1 columns);
    vanished planes are dropped from ``dhs``/``phs`` unless ``keep`` (the Theta call, made
    first). Returns the number of planes left."""
    pw_out = pw_in - fw + 1
    S_in, S_out = pw_in + 2 * P, pw_out + 2 * P
    if pw_out <= 0:
        return 0
    r_in, r_out, m = 0, 0, 0
    for g in range(n):
        ph = phs[g]
        ph_out = ph - fh + 1
        if ph_out > 0:
            _box_valid(src[r_in * S_in:], dst[r_out * S_out:], acc, ph_out, pw_in, pw_out, fh,
                       fw, P)
            r_out += ph_out + P
            if not keep:
                phs[m], dhs[m] = ph_out, dhs[g]
            m += 1
        r_in += ph + P
    return m


@cpu_jit
def affine_plane(K, T, ph, pw, P, w2, b2, has_ntk):
    """Dense (NTK parameterization) on every entry: ``K' = w2 K + b2``, ``T' = K' + w2 T``
    (one flat pass over the interior rows; ring entries get junk, as documented)."""
    S = pw + 2 * P
    k = K[P * S:(P + ph) * S]
    if has_ntk:
        t = T[P * S:(P + ph) * S]
        for i in range(ph * S):
            kk = w2 * k[i] + b2
            k[i] = kk
            t[i] = kk + w2 * t[i]
    else:
        for i in range(ph * S):
            k[i] = w2 * k[i] + b2


@cpu_jit
def abrelu_group(K, T, va, vb, off, Wres, dhs, phs, n, dw, pw, P, A, F, has_ntk, t_zero,
                 vprod):
    """ABReLU dual on a group of planes (``scalar.abrelu_entry``); ``va``/``vb`` are the
    variance rows of the two images, read at (y, x) and (y - dh, x - dw).

    The products ``k11 k22`` are gathered row by row into ``vprod`` (group layout, rings
    zero), then the dual runs as one flat loop over the tall plane: a per-row loop of ~16
    entries would leave most of this heavy body to LLVM's scalar remainder."""
    ox = max(dw, 0)
    S = pw + 2 * P
    tall = tall_rows(phs, n, P)
    m = tall * S
    vp = vprod[P * S:P * S + m]
    vp[:] = 0
    r0 = 0
    for g in range(n):
        dh = dhs[g]
        oy = max(dh, 0)
        for r in range(phs[g]):
            y = oy + r
            a = va[off + y * Wres + ox:off + y * Wres + ox + pw]
            b = vb[off + (y - dh) * Wres + ox - dw:off + (y - dh) * Wres + ox - dw + pw]
            row = vp[(r0 + r) * S + P:(r0 + r) * S + P + pw]
            for c in range(pw):
                row[c] = a[c] * b[c]
        r0 += phs[g] + P
    k = K[P * S:P * S + m]
    if has_ntk and not t_zero:
        t = T[P * S:P * S + m]
        for i in range(m):
            kk, dot = abrelu_entry(k[i], vp[i], A, F)
            k[i] = kk
            t[i] = t[i] * dot
    else:
        for i in range(m):
            k[i] = abrelu_entry(k[i], vp[i], A, F)[0]


@cpu_jit
def record_variances(K, ph, pw, P, var, off):
    """Plane (0, 0) of an image with itself holds its per-position variances: store them."""
    S = pw + 2 * P
    for r in range(ph):
        k = K[(P + r) * S + P:(P + r) * S + P + pw]
        v = var[off + r * pw:off + (r + 1) * pw]
        for c in range(pw):
            v[c] = k[c]


@cpu_jit
def interior_sum(K, ph, pw, P):
    """Sum over the interior rows (rings must be zero: ``zero_ring_group`` first), in float64,
    16 lanes at a time (vectorised without reassociating one running sum, and more accurate
    than a float32 running sum)."""
    S = pw + 2 * P
    k = K[P * S:(P + ph) * S]
    n = ph * S
    lanes = np.zeros(16, dtype=np.float64)
    n16 = n - n % 16
    for base in range(0, n16, 16):
        blk = k[base:base + 16]
        for c in range(16):
            lanes[c] += np.float64(blk[c])
    total = 0.0
    for i in range(n16, n):
        total += np.float64(k[i])
    return total + lanes.sum()
