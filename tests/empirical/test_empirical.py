"""Empirical NNGP/NTK: exact against finite-difference Jacobians and against Neural Tangents'
empirical kernels (committed fixtures), the per-layer Dense rule against Jacobian rows,
convergence to the analytic NTK as width grows, Monte Carlo, and bad inputs."""
import json

import numpy as np
import pytest

import infwide
from infwide import stax
from infwide.empirical import _ntk_rules
from infwide.empirical._contract import OutputAxes
from infwide.params import tree_leaves, tree_map, tree_unflatten_like

from tests.conftest import nt_fixture

NT = nt_fixture("empirical.npz")
NT_TABLE = json.loads(str(NT["table"]))


def fd_jacobian(layer, params, x, eps=1e-6):
    """d f(x) / d params by central differences: shape f(x).shape + (n_params,)."""
    cols = []
    for a in tree_leaves(params):
        for k in range(a.size):
            idx = np.unravel_index(k, a.shape)
            old = a[idx]
            a[idx] = old + eps
            up = layer.apply(params, x)
            a[idx] = old - eps
            down = layer.apply(params, x)
            a[idx] = old
            cols.append((up - down) / (2 * eps))
    return np.stack(cols, axis=-1)


def reference_kernel(j1, j2, trace_axes, diagonal_axes):
    """NT's trace/diagonal reduction of the full Jacobian contraction, by one einsum."""
    plan = OutputAxes(j1.ndim - 1, trace_axes, diagonal_axes, "test")
    lhs, out = plan.outer_subscripts().split("->")
    s1, s2 = lhs.split(",")
    return np.einsum(f"{s1}z,{s2}z->{out}", j1, j2) / plan.trace_size(j1.shape[:-1])


FD_NETS = {
    "mlp": (lambda: stax.serial(stax.Dense(7, W_std=1.5, b_std=0.3), stax.Relu(),
                                stax.Dense(3, b_std=0.2, parameterization="standard")), (3, 4)),
    "residual": (lambda: stax.serial(
        stax.Dense(4), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Dense(4, b_std=0.1), stax.Erf()), stax.Identity()),
        stax.FanInSum(), stax.Dense(2)), (3, 4)),
    "repeat_shared": (lambda: stax.serial(stax.Dense(4), stax.repeat(
        stax.serial(stax.Dense(4, b_std=0.3), stax.Relu()), 2), stax.Dense(2)), (3, 4)),
    "dense_spatial": (lambda: stax.serial(stax.Dense(3, b_std=0.5), stax.Gelu(),
                                          stax.Dense(2, b_std=0.1)), (3, 4, 2, 3)),
    "conv_pool_ln": (lambda: stax.serial(
        stax.Conv(3, (2, 2), padding="SAME", b_std=0.2), stax.LayerNorm(), stax.Relu(),
        stax.AvgPool((2, 2)), stax.Flatten(), stax.Dense(2, b_std=0.1)), (2, 4, 4, 2)),
}
FD_AXES = [((-1,), ()), ((), ()), ((-1,), (0,)), ((), (-1,))]


@pytest.mark.parametrize("name", sorted(FD_NETS))
def test_ntk_equals_jacobian_contraction(name):
    make, shape = FD_NETS[name]
    net = make()
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(shape), rng.standard_normal((2,) + shape[1:])
    _, params = net.init_fn(1, shape)
    j1, j2 = fd_jacobian(net, params, x1), fd_jacobian(net, params, x2)
    for tr, dg in FD_AXES:
        kernel_fn = infwide.empirical_kernel_fn(net, trace_axes=tr, diagonal_axes=dg)
        for x, j in ((None, j1), (x2, j2)):
            if 0 in dg and x is not None:
                continue
            ntk = kernel_fn(x1, x, "ntk", params)
            ref = reference_kernel(j1, j, tr, dg)
            assert ntk.shape == ref.shape
            np.testing.assert_allclose(ntk, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max(),
                                       err_msg=f"{name} trace={tr} diag={dg}")


def _nt_network(name):
    text = NT_TABLE[name]["text"]
    net = eval(text, {"stax": stax})
    x1, x2 = NT[f"{name}/x1"], NT[f"{name}/x2"]
    _, ours = net.init_fn(0, x1.shape)
    leaves = [NT[f"{name}/param{i}"] for i in range(NT_TABLE[name]["n_params"])]
    assert [a.shape for a in tree_leaves(ours)] == [a.shape for a in leaves], name
    return net, tree_unflatten_like(ours, [a.copy() for a in leaves]), x1, x2


@pytest.mark.parametrize("name", sorted(NT_TABLE))
def test_matches_neural_tangents(name):
    net, params, x1, x2 = _nt_network(name)
    for j, (tr, dg) in enumerate(NT_TABLE[name]["axes"]):
        kernel_fn = infwide.empirical_kernel_fn(net.apply_fn, trace_axes=tuple(tr),
                                                diagonal_axes=tuple(dg))
        for tag, x in (("x1x2", x2), ("x1x1", None)):
            key = f"{name}/{j}/{tag}"
            if f"{key}/ntk" not in NT:
                continue
            k = kernel_fn(x1, x, None, params)
            for g in ("nngp", "ntk"):
                ref = NT[f"{key}/{g}"]
                got = getattr(k, g)
                assert got.shape == ref.shape, f"{key}/{g}: {got.shape} vs NT {ref.shape}"
                np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max(),
                                           err_msg=f"{key}/{g}")


def test_dense_rule_equals_jacobian_rows(monkeypatch):
    """The Gram-matrix Dense rule (dense and spatial routes) equals the generic Jacobian rows."""
    net = stax.serial(stax.Dense(6, b_std=0.4), stax.Relu(), stax.Dense(3, W_std=1.3, b_std=0.2))
    rng = np.random.default_rng(2)
    for shape in ((4, 5), (4, 3, 2, 5)):
        x1, x2 = rng.standard_normal(shape), rng.standard_normal((3,) + shape[1:])
        _, params = net.init_fn(3, shape)
        for tr in ((-1,), ()):
            fast = infwide.empirical_ntk_fn(net, trace_axes=tr)(x1, x2, params)
            with monkeypatch.context() as m:
                m.setattr(_ntk_rules, "_RULES", ())
                slow = infwide.empirical_ntk_fn(net, trace_axes=tr)(x1, x2, params)
            np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-12)


def test_x2_none_and_dtype():
    net = stax.serial(stax.Dense(8, b_std=0.1), stax.Relu(), stax.Dense(2))
    x = np.random.default_rng(4).standard_normal((3, 5))
    _, params = net.init_fn(0, x.shape)
    kernel_fn = infwide.empirical_kernel_fn(net)
    # x2=None reuses x1's Jacobians; x in another order computes x2's own, rolled back after
    a, b = kernel_fn(x, None, None, params), kernel_fn(x, np.roll(x, 1, axis=0), None, params)
    np.testing.assert_allclose(a.ntk, np.roll(b.ntk, -1, axis=1), rtol=1e-13)
    np.testing.assert_allclose(a.nngp, np.roll(b.nngp, -1, axis=1), rtol=1e-13)
    assert a._fields == ("nngp", "ntk")
    both = kernel_fn(x, None, ("ntk", "nngp"), params)
    assert both._fields == ("ntk", "nngp")
    p32 = tree_map(lambda a: a.astype(np.float32), params)
    k32 = kernel_fn(x.astype(np.float32), None, "ntk", p32)   # float64 params promote (NumPy)
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, a.ntk, rtol=1e-4)
    assert kernel_fn(np.arange(15).reshape(3, 5), None, "nngp", params).dtype == np.float64


def test_list_outputs_give_one_kernel_per_output():
    net = stax.serial(stax.Dense(4, b_std=0.1), stax.FanOut(2),
                      stax.parallel(stax.Dense(2), stax.serial(stax.Relu(), stax.Dense(3))))
    x = np.random.default_rng(5).standard_normal((3, 2))
    _, params = net.init_fn(0, x.shape)
    ks = infwide.empirical_kernel_fn(net)(x, None, None, params)
    assert isinstance(ks, list) and len(ks) == 2
    jacobians = _branch_jacobians(net, params, x)
    for k in range(2):  # each output's NTK is its own Jacobian contraction (no cross terms, as NT)
        np.testing.assert_allclose(ks[k].ntk, reference_kernel(jacobians[k], jacobians[k],
                                                               (-1,), ()), rtol=1e-6, atol=1e-8)


def _branch_jacobians(net, params, x, eps=1e-6):
    cols = [[], []]
    for a in tree_leaves(params):
        for k in range(a.size):
            idx = np.unravel_index(k, a.shape)
            old = a[idx]
            a[idx] = old + eps
            up = net.apply(params, x)
            a[idx] = old - eps
            down = net.apply(params, x)
            a[idx] = old
            for b in range(2):
                cols[b].append((up[b] - down[b]) / (2 * eps))
    return [np.stack(c, axis=-1) for c in cols]


# -- convergence to the infinite-width NTK ---------------------------------------------------
def _ntk_error(width, seeds, x):
    net = stax.serial(stax.Dense(width, W_std=1.5, b_std=0.2), stax.Relu(),
                      stax.Dense(width, W_std=1.5, b_std=0.2), stax.Relu(),
                      stax.Dense(1, W_std=1.5, b_std=0.2))
    exact = net.kernel_fn(x, None, "ntk")
    ntk_fn = infwide.empirical_ntk_fn(net.apply_fn)
    errs = []
    for seed in seeds:
        _, params = net.init_fn(seed, x.shape)
        errs.append(np.linalg.norm(ntk_fn(x, None, params) - exact) / np.linalg.norm(exact))
    return float(np.sqrt(np.mean(np.square(errs))))


def test_empirical_ntk_converges_like_inverse_sqrt_width():
    """Relative error ~ c / sqrt(width): 16x the width gives ~1/4 of the error."""
    x = np.random.default_rng(6).standard_normal((5, 3))
    small, large = _ntk_error(64, range(8), x), _ntk_error(1024, range(8), x)
    ratio = small / large
    assert 2.6 < ratio < 6.0, (small, large, ratio)
    assert large < 0.15  # and a wrong analytic constant would leave a floor: ratio ~ 1


# -- Monte Carlo ----------------------------------------------------------------------------
def _mc_net(width, k):
    return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.3), stax.Erf(),
                       stax.Dense(width, W_std=1.5, b_std=0.3), stax.Relu(),
                       stax.Dense(k, W_std=1.5, b_std=0.3))


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_monte_carlo_agrees_with_analytic_kernels():
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    init_fn, apply_fn, kernel_fn = _mc_net(256, 64)
    exact = kernel_fn(x1, x2, "nngp")
    nngp = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 5, 48)(x1, x2, "nngp")
    assert _rel(nngp, exact) < 0.08
    assert _rel(nngp, 1.15 * exact) > 0.08  # a wrong constant would not pass
    init_fn, apply_fn, kernel_fn = _mc_net(256, 2)
    exact = kernel_fn(x1, x2, "ntk")
    ntk = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 5, 24)(x1, x2, "ntk")
    assert _rel(ntk, exact) < 0.06
    assert _rel(ntk, 1.15 * exact) > 0.06


def test_monte_carlo_generator_yields_running_estimates():
    init_fn, apply_fn, _ = _mc_net(32, 2)
    x = np.random.default_rng(12).standard_normal((3, 3))
    counts = [1, 4, 6]
    estimates = list(infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 11, counts)(x))
    assert len(estimates) == 3 and estimates[0]._fields == ("nngp", "ntk")
    for n, est in zip(counts, estimates):
        one = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 11, n)(x, None, ("nngp", "ntk"))
        np.testing.assert_allclose(one.ntk, est.ntk, rtol=1e-12)
        np.testing.assert_allclose(one.nngp, est.nngp, rtol=1e-12)
    single = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 11, [4])(x, None, "ntk")
    np.testing.assert_allclose(next(iter(single)), estimates[1].ntk, rtol=1e-12)


def test_monte_carlo_batching_is_exact_for_any_size():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(16, b_std=0.1), stax.Relu(), stax.Dense(2))
    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    whole = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 3, 4)(x1, x2, "ntk")
    tiled = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 3, 4, batch_size=2)(x1, x2, "ntk")
    np.testing.assert_allclose(tiled, whole, rtol=1e-12)
    sq = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 3, 2, batch_size=3)(x1, None, "nngp")
    np.testing.assert_allclose(sq, infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 3, 2)(
        x1, None, "nngp"), rtol=1e-12)


def test_monte_carlo_with_dropout_passes_fresh_rng():
    """Dropout's boost of the diagonal (NT: 1/rate on x1 == x2) needs one mask per sample
    for both factors of a pair: with and without tiles."""
    init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(256, b_std=0.1), stax.Relu(),
                                               stax.Dropout(0.8), stax.Dense(32))
    x = np.random.default_rng(9).standard_normal((3, 2))
    exact = kernel_fn(x, None, "nngp")
    for batch_size in (0, 2):
        est = infwide.monte_carlo_kernel_fn(init_fn, apply_fn, 0, 48, batch_size=batch_size)(
            x, None, "nngp")
        assert np.abs(est - exact).max() < 0.08 * np.abs(exact).max(), batch_size
        ratio = np.trace(est) / np.trace(exact)  # 0.8 if a pair's factors had different masks
        assert 0.92 < ratio < 1.08, (batch_size, ratio)


# -- bad inputs: clear errors, never NaN ----------------------------------------------------
def _small():
    net = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Dense(2))
    x = np.random.default_rng(10).standard_normal((3, 5))
    return net, x, net.init_fn(0, x.shape)[1]


def test_foreign_apply_fn_is_a_type_error():
    net, x, params = _small()
    for bad in (lambda p, x: x, np.tanh, net.kernel_fn, "Dense"):
        for make in (infwide.empirical_ntk_fn, infwide.empirical_nngp_fn,
                     infwide.empirical_kernel_fn):
            with pytest.raises(TypeError, match="built with infwide.stax"):
                make(bad)
    with pytest.raises(TypeError, match="built with infwide.stax"):
        infwide.monte_carlo_kernel_fn(net.init_fn, lambda p, x: x, 0, 2)


def test_params_that_do_not_fit():
    net, x, params = _small()
    kernel_fn = infwide.empirical_kernel_fn(net)
    other = stax.serial(stax.Dense(6), stax.Relu(), stax.Dense(2)).init_fn(0, x.shape)[1]
    with pytest.raises(ValueError, match=r"params\[0\]\[0\] expected an array of shape \(5, 4\)"):
        kernel_fn(x, None, "ntk", other)
    with pytest.raises(ValueError, match="do not fit the network"):
        kernel_fn(x, None, "ntk", params[:2])
    with pytest.raises(ValueError, match="do not fit the network"):
        kernel_fn(x[:, :4], None, "ntk", params)
    bad = (tuple(np.full_like(a, np.nan) if a is not None else None for a in params[0]),) + \
        params[1:]
    with pytest.raises(ValueError, match="NaN or Inf"):
        kernel_fn(x, None, "nngp", bad)


def test_bad_axes_get_and_inputs():
    net, x, params = _small()
    with pytest.raises(ValueError, match="trace_axes"):
        infwide.empirical_ntk_fn(net, trace_axes=(5,))(x, None, params)
    with pytest.raises(ValueError, match="both in `trace_axes` and `diagonal_axes`"):
        infwide.empirical_ntk_fn(net, trace_axes=(-1,), diagonal_axes=(1,))(x, None, params)
    with pytest.raises(ValueError, match="unknown `get`"):
        infwide.empirical_kernel_fn(net)(x, None, "cov1", params)
    with pytest.raises(ValueError, match="same size on traced or diagonal axis 0"):
        infwide.empirical_nngp_fn(net, diagonal_axes=(0,))(x, x[:2], params)
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        infwide.empirical_ntk_fn(net)(x_nan, None, params)
    with pytest.raises(ValueError, match="n_samples"):
        infwide.monte_carlo_kernel_fn(net.init_fn, net.apply_fn, 0, [0, 3])


def test_rng_keyword_is_split_for_x1_and_x2_as_nt():
    net = stax.serial(stax.Dense(64), stax.Dropout(0.5), stax.Dense(2))
    x = np.random.default_rng(0).standard_normal((3, 2))
    _, params = net.init_fn(0, x.shape)
    kernel_fn = infwide.empirical_kernel_fn(net)
    same = kernel_fn(x, None, "ntk", params, rng=1)
    np.testing.assert_array_equal(same, kernel_fn(x, None, "ntk", params, rng=1))
    np.testing.assert_allclose(same, same.T, rtol=1e-12)  # one mask: a symmetric kernel
    split = kernel_fn(x, x, "ntk", params, rng=1)  # independent masks for x1 and x2
    assert not np.allclose(split, same)
    with pytest.raises(ValueError, match="rng"):
        kernel_fn(x, None, "ntk", params)  # Dropout in train mode needs randomness
