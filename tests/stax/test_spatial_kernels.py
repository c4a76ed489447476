"""Spatial recursions: exact operator identities, forms, invariances and the requirements algebra.

The covariance recursion of a linear spatial layer is ``K' = E[L K L^T]`` over its weights.
For a single channel, a filter that is one-hot at offset ``a`` turns the finite layer into a
fixed matrix ``T_a``; i.i.d. filter entries give ``K' = mean_a T_a K T_a^T``; pooling is one
fixed matrix ``P`` with ``K' = P K P^T``. Building those matrices from the *finite* layers
ties each reference recursion to its forward pass exactly (no Monte-Carlo noise).
"""
import itertools

import numpy as np
import pytest

from infwide import stax
from infwide.kernels import conv as kconv
from infwide.kernels import pool as kpool
from infwide.kernels.forms import full_to_diagonal
from infwide.stax._inputs import inputs_to_kernel

SIZES = (5, 4)


def _psd(rng, sizes):
    p = int(np.prod(sizes))
    a = rng.standard_normal((p, p + 2))
    k = a @ a.T / p
    return k


def _to_zipped(k, sizes):
    """(P, P') with P = prod(sizes) -> (S1, S1', S2, S2', ...)."""
    n = len(sizes)
    k = k.reshape(sizes + sizes)
    return k.transpose([i for d in range(n) for i in (d, n + d)])


def _matrix(layer, params, sizes):
    """The finite single-channel layer as a matrix (out positions x in positions)."""
    p = int(np.prod(sizes))
    y = layer.apply(params, np.eye(p).reshape((p,) + sizes + (1,)))
    return y.reshape(p, -1).T, y.shape[1:-1]


def _one_hot_filters(filter_shape):
    for a in itertools.product(*[range(f) for f in filter_shape]):
        W = np.zeros(filter_shape + (1, 1))
        W[a] = 1.0
        yield W


CONV_CASES = [(f, t, pad) for pad in ("VALID", "SAME", "CIRCULAR")
              for f, t in [((3, 3), (1, 1)), ((3, 2), (2, 1)), ((2, 3), (2, 3)), ((4, 2), (1, 2))]]


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("f,t,pad", CONV_CASES)
def test_conv_recursions_equal_the_finite_operator(f, t, pad, transpose):
    rng = np.random.default_rng(0)
    fsize = int(np.prod(f))
    make = stax.ConvTranspose if transpose else stax.Conv
    layer = make(1, f, t, pad, W_std=np.sqrt(fsize))      # scale 1: y = T_a x exactly
    K = _psd(rng, SIZES)
    ref, out_sizes = 0.0, None
    for W in _one_hot_filters(f):
        T, out_sizes = _matrix(layer, (W, None), SIZES)
        ref = ref + T @ K @ T.T / fsize
    full = (kconv.conv_transpose_full if transpose else kconv.conv_full)(
        np, _to_zipped(K, SIZES)[None], f, t, pad, 1)[0]
    np.testing.assert_allclose(full, _to_zipped(ref, tuple(out_sizes)), rtol=1e-12, atol=1e-12)
    diag = (kconv.conv_transpose_diag if transpose else kconv.conv_diag)(
        np, full_to_diagonal(np, _to_zipped(K, SIZES)[None], 1), f, t, pad, 1)[0]
    np.testing.assert_allclose(diag, np.diag(ref).reshape(out_sizes), rtol=1e-12, atol=1e-12)


POOL_CASES = [(w, t, pad, ne) for pad in ("VALID", "SAME", "CIRCULAR") for ne in (False, True)
              for w, t in [((2, 2), (2, 2)), ((3, 2), (1, 1)), ((3, 3), (2, 3))]]


@pytest.mark.parametrize("w,t,pad,normalize_edges", POOL_CASES)
def test_pool_recursions_equal_the_finite_operator(w, t, pad, normalize_edges):
    rng = np.random.default_rng(1)
    K = _psd(rng, SIZES)
    for layer, fn in ((stax.AvgPool(w, t, pad, normalize_edges),
                       lambda m: kpool.avg_pool_full(np, m, w, t, pad, normalize_edges, 1)),
                      (stax.SumPool(w, t, pad),
                       lambda m: kpool.sum_pool_full(np, m, w, t, pad, 1))):
        P, out_sizes = _matrix(layer, (), SIZES)
        got = fn(_to_zipped(K, SIZES)[None])[0]
        np.testing.assert_allclose(got, _to_zipped(P @ K @ P.T, tuple(out_sizes)), rtol=1e-12)


def test_global_pools_flatten_and_diag_rules():
    rng = np.random.default_rng(2)
    K = _psd(rng, SIZES)
    Kz = _to_zipped(K, SIZES)[None]
    np.testing.assert_allclose(kpool.global_avg_full(np, Kz, 1)[0], K.mean())
    np.testing.assert_allclose(kpool.global_sum_full(np, Kz, 1)[0], K.sum())
    np.testing.assert_allclose(kpool.flatten_full(np, Kz, 1)[0], np.diag(K).mean())
    d = full_to_diagonal(np, Kz, 1)
    np.testing.assert_allclose(kpool.flatten_diag(np, d, 1)[0], np.diag(K).mean())
    # NT's diagonal-input rules are the full rules on a covariance with zero off-diagonals.
    E = kconv.embed_diagonal(np, d, 1)
    np.testing.assert_allclose(kpool.global_avg_diag(np, d, 1), kpool.global_avg_full(np, E, 1))
    np.testing.assert_allclose(kpool.global_sum_diag(np, d, 1), kpool.global_sum_full(np, E, 1))
    for pad in ("VALID", "SAME", "CIRCULAR"):
        np.testing.assert_allclose(
            kpool.avg_pool_diag(np, d, (3, 2), (2, 1), pad, True, 1),
            full_to_diagonal(np, kpool.avg_pool_full(np, E, (3, 2), (2, 1), pad, True, 1), 1))
    np.testing.assert_allclose(kconv.local_full(np, d, (3, 3), (1, 1), "SAME", 1),
                               kconv.embed_diagonal(np, kconv.conv_diag(
                                   np, d, (3, 3), (1, 1), "SAME", 1), 1))


# -- forms ---------------------------------------------------------------------------------
FORM_NETS = {
    "conv_paddings": lambda: stax.serial(
        stax.Conv(3, (3, 3), padding="SAME", W_std=1.4, b_std=0.2), stax.Relu(),
        stax.Conv(3, (3, 2), (2, 1), "CIRCULAR"), stax.Relu(), stax.Conv(3, (2, 2), (1, 2))),
    "transpose_local": lambda: stax.serial(
        stax.ConvTranspose(3, (3, 3), (2, 2), "CIRCULAR"), stax.Relu(),
        stax.ConvLocal(3, (2, 2), b_std=0.3), stax.Relu(), stax.Conv(2, (2, 2), padding="SAME")),
    "norm_dropout": lambda: stax.serial(
        stax.Conv(3, (3, 3), padding="SAME", b_std=0.2), stax.LayerNorm(axis=(1, 3)),
        stax.Relu(), stax.Dropout(0.7), stax.Conv(3, (3, 3), padding="SAME", b_std=0.1)),
    "residual": lambda: stax.serial(
        stax.Conv(3, (3, 3), padding="SAME"), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Conv(3, (3, 3), padding="SAME")),
                      stax.Identity()), stax.FanInSum(), stax.Relu(),
        stax.Conv(2, (1, 1))),
}


@pytest.mark.parametrize("name", sorted(FORM_NETS))
def test_diagonal_form_is_the_diagonal_of_the_full_form(name):
    net = FORM_NETS[name]()
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((3, 5, 5, 2))
    for xb in (x2, None):
        full = net.kernel(inputs_to_kernel(x1, xb, diagonal_spatial=False, compute_ntk=True),
                          out_full=True)
        diag = net.kernel(inputs_to_kernel(x1, xb, diagonal_spatial=True, compute_ntk=True),
                          out_full=False)
        assert not full.diagonal_spatial and diag.diagonal_spatial
        for q, nb in (("nngp", 2), ("ntk", 2), ("cov1", 1)):
            np.testing.assert_allclose(getattr(diag, q), full_to_diagonal(np, getattr(full, q), nb),
                                       rtol=1e-12, atol=1e-14, err_msg=f"{name} {q}")
        assert net.kernel_fn(x1, xb, "nngp").shape == full.nngp.shape   # NT: spatial out = full


def test_circular_padding_is_translation_invariant():
    net = stax.serial(stax.Conv(3, (3, 3), padding="CIRCULAR", W_std=1.3, b_std=0.2), stax.Relu(),
                      stax.Conv(3, (3, 2), padding="CIRCULAR"), stax.Relu(),
                      stax.AvgPool((3, 3), padding="CIRCULAR"))
    gap = stax.serial(net, stax.GlobalAvgPool())
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((2, 6, 5, 2)), rng.standard_normal((2, 6, 5, 2))
    shift = lambda x: np.roll(x, (2, -1), axis=(1, 2))
    k, ks = net.kernel_fn(x1, x2), net.kernel_fn(shift(x1), shift(x2))
    rolled = np.roll(k.ntk, (2, 2, -1, -1), axis=(2, 3, 4, 5))
    np.testing.assert_allclose(ks.ntk, rolled, rtol=1e-12)
    np.testing.assert_allclose(gap.kernel_fn(shift(x1), shift(x2), "nngp"),
                               gap.kernel_fn(x1, x2, "nngp"), rtol=1e-12)
    # ... and the check can fail: 'SAME' padding is not translation invariant.
    same = stax.serial(stax.Conv(3, (3, 3), padding="SAME"), stax.Relu(), stax.GlobalAvgPool())
    assert not np.allclose(same.kernel_fn(shift(x1), shift(x2), "nngp"),
                           same.kernel_fn(x1, x2, "nngp"), rtol=1e-6)


def test_serial_is_associative():
    a = stax.Conv(3, (3, 3), padding="SAME", b_std=0.1)
    b = stax.serial(stax.Relu(), stax.AvgPool((2, 2), (2, 2)))
    c = stax.serial(stax.Conv(2, (2, 2)), stax.Relu(), stax.Flatten(), stax.Dense(1))
    x = np.random.default_rng(5).standard_normal((3, 6, 6, 2))
    left, right = stax.serial(stax.serial(a, b), c), stax.serial(a, stax.serial(b, c))
    for get in ("nngp", "ntk"):
        np.testing.assert_allclose(left.kernel_fn(x, None, get), right.kernel_fn(x, None, get),
                                   rtol=1e-13)
    _, p = left.init_fn(0, x.shape)          # ((pa, pb), pc) -> (pa, (pb, pc))
    np.testing.assert_allclose(left.apply_fn(p, x), right.apply_fn((p[0][0], (p[0][1], p[1])), x),
                               rtol=1e-13)


# -- requirements algebra ------------------------------------------------------------------
def test_requirements_choose_the_cheapest_form():
    conv = lambda: stax.Conv(2, (3, 3), padding="SAME")
    flat = stax.serial(conv(), stax.Relu(), conv(), stax.Relu(), stax.Flatten(), stax.Dense(1))
    gap = stax.serial(conv(), stax.Relu(), conv(), stax.Relu(), stax.GlobalAvgPool())
    pool_flat = stax.serial(conv(), stax.Relu(), stax.AvgPool((2, 2)), conv(), stax.Flatten())
    local_gap = stax.serial(conv(), stax.Relu(), stax.ConvLocal(2, (3, 3)), stax.GlobalAvgPool())
    assert flat.requirements(False) == [False] * 6
    assert gap.requirements(False) == [True, True, True, True, False]
    assert pool_flat.requirements(False) == [True, True, False, False, False]
    assert not local_gap.input_needs_full(False)          # unshared weights: diagonal suffices
    assert not flat.input_needs_full(False) and gap.input_needs_full(False)
    assert stax.LayerNorm().input_needs_full(True) and not stax.LayerNorm().input_needs_full(False)
    assert stax.Dropout(0.5).input_needs_full(True)
    assert stax.ConvTranspose(1, (2,)).input_needs_full(True)


def test_mismatched_forms_give_a_clear_error():
    x = np.random.default_rng(6).standard_normal((2, 5, 5, 2))
    k_diag = inputs_to_kernel(x, None, diagonal_spatial=True, compute_ntk=True)
    gap_net = stax.serial(stax.Conv(2, (3, 3)), stax.Relu(), stax.GlobalAvgPool())
    with pytest.raises(ValueError, match="GlobalAvgPool: needs the full spatial covariance"):
        gap_net.kernel_fn(k_diag)
    with pytest.raises(ValueError,
                       match=r"AvgPool\(\(2, 2\)\): needs the full .* shape \(2, 2, 5, 5\)"):
        stax.AvgPool((2, 2)).kernel(k_diag)


def test_fused_op_descriptors():
    from infwide.kernels import ops
    assert stax.Conv(3, (3, 3), padding="same", W_std=2.0, b_std=0.5).fused_op() == \
        ops.Conv((3, 3), (1, 1), "SAME", 4.0, 0.25)
    assert stax.Conv(3, (3, 1)).fused_op() == ops.Conv((3, 1), (1, 1), "VALID", 1.0, 0.0)
    assert stax.Conv(3, (3, 3), (2, 1)).fused_op() == ops.Conv((3, 3), (2, 1), "VALID", 1.0, 0.0)
    assert stax.Conv(3, (3, 3), parameterization="standard").fused_op() is None
    assert stax.ConvTranspose(3, (3, 3)).fused_op() is None and \
        stax.ConvLocal(3, (3, 3)).fused_op() is None
    assert stax.AvgPool((2, 2), (2, 2)).fused_op() == \
        ops.AvgPool((2, 2), (2, 2), "VALID", False)
    assert stax.GlobalAvgPool().fused_op() == ops.GlobalAvgPool()
    assert stax.Flatten().fused_op() == ops.Flatten()
    assert stax.Dense(2, W_std=3.0).fused_op() == ops.Affine(9.0, 0.0)
    assert stax.Relu().fused_op() == ops.Dual("abrelu", (0.0, 1.0))
    assert stax.Relu(do_stabilize=True).fused_op() is None
    assert stax.Erf(2.0, 0.5, 0.1).fused_op() == ops.Dual("erf", (2.0, 0.5, 0.1))
    assert stax.Gelu().fused_op() is None and stax.LayerNorm().fused_op() is None
    assert stax.SumPool((2, 2)).fused_op() is None and stax.GlobalSumPool().fused_op() is None
    for layer in (stax.Conv(1, (2, 2)), stax.AvgPool((2, 2)), stax.GlobalAvgPool(),
                  stax.Flatten(), stax.Relu(), stax.Dense(1)):
        hash(layer.fused_op())


def test_float32_follows_float64():
    net = stax.serial(stax.Conv(3, (3, 3), padding="CIRCULAR", W_std=1.4, b_std=0.1),
                      stax.LayerNorm(), stax.Relu(), stax.AvgPool((2, 2), (2, 2), "SAME", True),
                      stax.Conv(3, (2, 2), (1, 2)), stax.Relu(), stax.Dropout(0.8),
                      stax.ConvTranspose(2, (2, 2), (2, 1), "SAME"), stax.GlobalAvgPool())
    x = np.random.default_rng(7).standard_normal((3, 6, 6, 2))
    k64 = net.kernel_fn(x, None, ("nngp", "ntk"))
    k32 = net.kernel_fn(x.astype(np.float32), None, ("nngp", "ntk"))
    for a, b in zip(k32, k64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
