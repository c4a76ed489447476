"""Analytic spatial NNGPs against Monte-Carlo estimates from finite networks.

``E[f(x_i)[s] f(x_j)[s']]``, averaged over output channels and independent initialisations
(and dropout masks), converges to the analytic kernel. The error is measured relative to
``sqrt(K_ii[s, s] K_jj[s', s'])``; the tolerance (0.06) sits a few standard errors above
the sampling noise and finite-width bias at these sizes, far below what a wrong constant or
boundary rule produces (a missing ``1/f``, a dropped bias or an off-by-one padding give
errors of 0.2 or more, see ``test_tolerance_catches_wrong_formulas``).
"""
import numpy as np
import pytest

from infwide import stax

TOL = 0.06
N_SAMPLES = 200

NETS = {
    "conv_valid_s2": lambda: stax.serial(
        stax.Conv(128, (3, 3), W_std=1.5, b_std=0.3), stax.Relu(),
        stax.Conv(64, (2, 2), (2, 1), W_std=1.3, b_std=0.1)),
    "conv_same_s2": lambda: stax.serial(
        stax.Conv(128, (3, 2), padding="SAME", W_std=1.5), stax.Relu(),
        stax.Conv(64, (3, 3), (2, 2), "SAME", b_std=0.2)),
    "conv_circular": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="CIRCULAR", W_std=1.4, b_std=0.2), stax.Relu(),
        stax.Conv(64, (2, 3), (1, 2), "CIRCULAR")),
    "avgpool_same_edges": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="SAME", W_std=1.5), stax.Relu(),
        stax.AvgPool((3, 3), (2, 2), "SAME", normalize_edges=True),
        stax.Conv(64, (1, 1), b_std=0.1)),
    "sumpool_circular_gap": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="CIRCULAR"), stax.Relu(),
        stax.SumPool((2, 2), padding="CIRCULAR"), stax.Conv(64, (2, 2)), stax.Relu(),
        stax.GlobalAvgPool(), stax.Dense(64)),
    "residual_gsp": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="SAME"), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Conv(128, (3, 3), padding="SAME",
                                                         W_std=1.3)), stax.Identity()),
        stax.FanInSum(), stax.Relu(), stax.GlobalSumPool(), stax.Dense(64, W_std=0.5)),
    "layernorm": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="SAME", b_std=0.5), stax.LayerNorm(axis=(1, 2, 3)),
        stax.Relu(), stax.Conv(64, (2, 2))),
    "dropout": lambda: stax.serial(
        stax.Conv(128, (3, 3), padding="SAME", W_std=1.5), stax.Relu(), stax.Dropout(0.6),
        stax.Conv(64, (3, 3), b_std=0.1)),
    "transpose_local": lambda: stax.serial(
        stax.ConvTranspose(96, (3, 3), (2, 2), "CIRCULAR", W_std=1.4), stax.Relu(),
        stax.ConvLocal(48, (3, 3), (2, 2), "SAME", b_std=0.3)),
    "flatten_1d": lambda: stax.serial(
        stax.Conv(128, (3,), (2,), "SAME", W_std=1.5, b_std=0.2), stax.Relu(), stax.Flatten(),
        stax.Dense(64)),
}


def _positions(k, n_sp):
    """(N, N, S1, S1', ..) or (N, N) -> (N, N, P, P') with P the flattened positions."""
    if k.ndim == 2:
        return k[:, :, None, None]
    n = k.shape[0]
    order = [0, 1] + [2 + 2 * d for d in range(n_sp)] + [3 + 2 * d for d in range(n_sp)]
    k = k.transpose(order)
    p = int(np.prod(k.shape[2:2 + n_sp]))
    return k.reshape(n, n, p, -1)


def _mc(net, x, n_samples, seed):
    init_fn, apply_fn, _ = net
    rng = np.random.default_rng(seed)
    acc = 0.0
    for _ in range(n_samples):
        _, params = init_fn(rng, x.shape)
        f = apply_fn(params, x, rng=rng)
        f = f.reshape(f.shape[0], -1, f.shape[-1])
        acc = acc + np.einsum("isc,jtc->ijst", f, f) / f.shape[-1]
    return acc / n_samples


def _rel_error(emp, exact):
    var = np.einsum("iiss->is", exact)
    scale = np.sqrt(np.einsum("is,jt->ijst", var, var))
    return np.max(np.abs(emp - exact) / scale)


def _inputs(name):
    shape = (8, 2) if name.endswith("1d") else (5, 5, 2)
    if name == "transpose_local":
        shape = (3, 3, 2)
    return np.random.default_rng(11).standard_normal((3,) + shape)


@pytest.mark.parametrize("name", sorted(NETS))
def test_nngp_matches_monte_carlo(name):
    net = NETS[name]()
    x = _inputs(name)
    exact = _positions(net.kernel_fn(x, None, "nngp"), x.ndim - 2)
    emp = _mc(net, x, N_SAMPLES, seed=5)
    assert _rel_error(emp, exact) < TOL


def test_tolerance_catches_wrong_formulas():
    """The same estimates against kernels of deliberately wrong networks must fail TOL."""
    x = _inputs("conv")
    net = NETS["conv_same_s2"]()
    emp = _mc(net, x, N_SAMPLES, seed=5)
    wrong = {   # what a wrong rule would compute instead of the right one
        "no 1/f in the second conv": stax.serial(
            stax.Conv(128, (3, 2), padding="SAME", W_std=1.5), stax.Relu(),
            stax.Conv(64, (3, 3), (2, 2), "SAME", W_std=3.0, b_std=0.2)),
        "dropped bias": stax.serial(
            stax.Conv(128, (3, 2), padding="SAME", W_std=1.5), stax.Relu(),
            stax.Conv(64, (3, 3), (2, 2), "SAME")),
        "zero padding taken as circular": stax.serial(
            stax.Conv(128, (3, 2), padding="CIRCULAR", W_std=1.5), stax.Relu(),
            stax.Conv(64, (3, 3), (2, 2), "CIRCULAR", b_std=0.2)),
    }
    for what, bad in wrong.items():
        err = _rel_error(emp, _positions(bad.kernel_fn(x, None, "nngp"), 2))
        assert err > 2 * TOL, what
    emp = _mc(NETS["dropout"](), x, N_SAMPLES, seed=5)
    no_boost = stax.serial(stax.Conv(128, (3, 3), padding="SAME", W_std=1.5), stax.Relu(),
                           stax.Dropout(0.6, "test"), stax.Conv(64, (3, 3), b_std=0.1))
    assert _rel_error(emp, _positions(no_boost.kernel_fn(x, None, "nngp"), 2)) > 2 * TOL


def _transpose_local(second):
    return stax.serial(
        stax.ConvTranspose(64, (3, 3), (2, 1), "CIRCULAR", W_std=1.3), stax.Relu(),
        second(24, (2, 2), padding="SAME", b_std=0.3), stax.Relu(),
        stax.GlobalSumPool(), stax.Dense(8, W_std=0.5))


def _conv_pool_layernorm(normalize_edges):
    return stax.serial(
        stax.Conv(96, (3, 3), padding="SAME", W_std=1.4, b_std=0.2), stax.LayerNorm(),
        stax.Relu(), stax.Conv(96, (3, 3), (2, 2), "CIRCULAR", W_std=1.4), stax.Relu(),
        stax.AvgPool((2, 2), padding="SAME", normalize_edges=normalize_edges),
        stax.GlobalAvgPool(), stax.Dense(8))


NTK_NETS = {   # name: (network, a subtly different network whose NTK the estimate must reject)
    "conv_pool_layernorm": (lambda: _conv_pool_layernorm(True),
                            lambda: _conv_pool_layernorm(False)),
    "transpose_local": (lambda: _transpose_local(stax.ConvLocal),
                        lambda: _transpose_local(stax.Conv)),
}


@pytest.mark.parametrize("name", sorted(NTK_NETS))
def test_ntk_matches_empirical_ntk_of_finite_networks(name):
    """The analytic NTK against the mean empirical NTK (J J^T from the layers' hand-derived
    backward passes) of 30 finite networks; a neighbouring architecture's NTK is far off."""
    from infwide.empirical import empirical_ntk_fn
    make, make_other = NTK_NETS[name]
    net = make()
    x = np.random.default_rng(0).standard_normal((3, 4, 4, 2) if name == "transpose_local"
                                                 else (3, 5, 5, 2))
    ntk_fn = empirical_ntk_fn(net, trace_axes=(-1,))
    rng = np.random.default_rng(1)
    emp = sum(ntk_fn(x, None, net.init_fn(rng, x.shape)[1]) for _ in range(30)) / 30
    exact = net.kernel_fn(x, None, "ntk")
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    assert np.max(np.abs(emp - exact) / scale) < 0.1
    assert np.max(np.abs(emp - make_other().kernel_fn(x, None, "ntk")) / scale) > 0.3
