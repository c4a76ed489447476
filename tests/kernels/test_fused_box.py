"""``planes.conv_group`` on a group of stacked planes against a NumPy convolution of each plane.

The 'SAME' box sum has a one-pass path for 3-tap filters with the affine map folded in
(bench/NOTES.md, step 20) and a generic path for other sizes; both, with and without a Theta
input (the raw inputs' Theta is zero), are checked here entry by entry, with junk in the rings
(the engine's rings hold junk until ``conv_group`` zeroes them)."""
import numpy as np
import pytest

from kernels.fused.planes import conv_group

P = 2


def _pack(planes, pw):
    """Group layout: P ring rows, plane 0, P ring rows, plane 1, ..., P ring rows; rows of
    stride pw + 2P with P ring columns each side; the rings hold junk."""
    S = pw + 2 * P
    rows = sum(p.shape[0] for p in planes) + (len(planes) + 1) * P
    buf = np.full(rows * S + 4 * S, 7.5e3, dtype=planes[0].dtype)
    r = P
    for p in planes:
        for q in range(p.shape[0]):
            buf[(r + q) * S + P:(r + q) * S + P + pw] = p[q]
        r += p.shape[0] + P
    return buf


def _unpack(buf, phs, pw):
    S, r, out = pw + 2 * P, P, []
    for ph in phs:
        out.append(np.stack([buf[(r + q) * S + P:(r + q) * S + P + pw] for q in range(ph)]))
        r += ph + P
    return out


def _box_reference(plane, fh, fw):
    """'SAME' box sum of one plane with zero padding (front padding (f - 1) // 2)."""
    lo_h, lo_w = (fh - 1) // 2, (fw - 1) // 2
    ph, pw = plane.shape
    pad = np.zeros((ph + fh - 1, pw + fw - 1), dtype=np.float64)
    pad[lo_h:lo_h + ph, lo_w:lo_w + pw] = plane
    return sum(pad[t:t + ph, u:u + pw] for t in range(fh) for u in range(fw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", [(3, 3), (1, 3), (3, 1), (2, 2), (5, 3)])
@pytest.mark.parametrize("t_zero", [False, True])
def test_conv_group_same_matches_numpy(dtype, f, t_zero):
    rng = np.random.default_rng(sum(f) + 10 * t_zero)
    pw, phs = 5, [4, 1, 3, 2]
    ks = [rng.standard_normal((ph, pw)).astype(dtype) for ph in phs]
    ts = [rng.standard_normal((ph, pw)).astype(dtype) for ph in phs]
    Kin, Tin = _pack(ks, pw), _pack(ts, pw)
    Kout, Tout = np.full_like(Kin, np.nan), np.full_like(Kin, np.nan)
    acc = np.zeros((2, Kin.size), dtype=dtype)
    dhs, ph_arr = np.zeros(8, np.int64), np.array(phs + [0] * 4, np.int64)
    scale, b2 = dtype(1.7 / (f[0] * f[1])), dtype(0.3)
    n, pw_out = conv_group(Kin, Tin, Kout, Tout, acc, dhs, ph_arr, len(phs), pw, f[0], f[1],
                           (f[0] - 1) // 2, (f[1] - 1) // 2, False, P, scale, b2, True, t_zero)
    assert (n, pw_out) == (len(phs), pw)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for k, t, k_out, t_out in zip(ks, ts, _unpack(Kout, phs, pw), _unpack(Tout, phs, pw)):
        k_ref = float(scale) * _box_reference(k, *f) + float(b2)
        t_ref = k_ref if t_zero else k_ref + float(scale) * _box_reference(t, *f)
        np.testing.assert_allclose(k_out, k_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(t_out, t_ref, rtol=tol, atol=tol)
