"""Foundation: the Layer triple, get semantics, Dense in both parameterizations."""
import numpy as np
import pytest

from infwide import stax, Kernel

from tests.conftest import assert_equals_general_path, mc_nngp


def fc_net(param="ntk"):
    return stax.serial(stax.Dense(64, W_std=1.5, b_std=0.3, parameterization=param), stax.Relu(),
                       stax.Dense(8, W_std=1.2, b_std=0.1, parameterization=param))


def test_triple_unpacks_and_shapes(x_fc):
    init_fn, apply_fn, kernel_fn = fc_net()
    out_shape, params = init_fn(0, x_fc[0].shape)
    assert out_shape == (5, 8)
    assert apply_fn(params, x_fc[0]).shape == (5, 8)
    k = kernel_fn(x_fc[0], x_fc[1])
    assert isinstance(k, Kernel)
    assert k.nngp.shape == (5, 4) and k.ntk.shape == (5, 4)
    assert k.cov1.shape == (5,) and k.cov2.shape == (4,)


def test_get_semantics(x_fc):
    kernel_fn = fc_net().kernel_fn
    k = kernel_fn(x_fc[0], x_fc[1])
    np.testing.assert_array_equal(kernel_fn(x_fc[0], x_fc[1], "nngp"), k.nngp)
    both = kernel_fn(x_fc[0], x_fc[1], ("ntk", "nngp"))
    assert both._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(both.ntk, k.ntk)
    with pytest.raises(ValueError, match="unknown `get` 'nngpp'"):
        kernel_fn(x_fc[0], None, "nngpp")


def test_x2_none_equals_the_general_two_input_path(x_fc):
    """kernel_fn(x, None) against kernel_fn(x, x2) with x2 the rows of x in another order (the
    general path: kernel_fn(x, x) would be rewritten into kernel_fn(x, None)), rolled back."""
    kernel_fn = fc_net().kernel_fn
    a = kernel_fn(x_fc[0], None)
    b = kernel_fn(x_fc[0], np.roll(x_fc[0], 1, axis=0))
    assert a.x1_is_x2 and a.cov2 is None and not b.x1_is_x2
    assert_equals_general_path(a.nngp, b.nngp, rtol=1e-13)
    assert_equals_general_path(a.ntk, b.ntk, rtol=1e-13)
    np.testing.assert_allclose(a.cov1, np.roll(b.cov2, -1), rtol=1e-13)


def test_dtype_follows_input(x_fc):
    kernel_fn = fc_net().kernel_fn
    assert kernel_fn(x_fc[0].astype(np.float32), None, "ntk").dtype == np.float32
    assert kernel_fn(x_fc[0], None, "ntk").dtype == np.float64
    assert kernel_fn(np.arange(12).reshape(3, 4), None, "nngp").dtype == np.float64
    k32 = kernel_fn(x_fc[0].astype(np.float32), None, "ntk")
    np.testing.assert_allclose(k32, kernel_fn(x_fc[0], None, "ntk"), rtol=1e-4)


def test_dense_standard_vs_ntk_parameterization(x_fc):
    """Same NNGP; standard NTK = n_in * K_in + W^2 Theta + 1 (bias) per layer (Sohl-Dickstein 2020)."""
    x = x_fc[0]
    std = stax.Dense(10, W_std=1.3, b_std=0.2, parameterization="standard")
    ntk = stax.Dense(10, W_std=1.3, b_std=0.2)
    ks, kn = std.kernel_fn(x, None), ntk.kernel_fn(x, None)
    np.testing.assert_allclose(ks.nngp, kn.nngp)
    np.testing.assert_allclose(ks.ntk, x.shape[1] * (x @ x.T / x.shape[1]) + 1.0)
    np.testing.assert_allclose(kn.ntk, kn.nngp)


@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_dense_relu_monte_carlo(param, x_fc):
    """Finite networks of width 64 (output width 8), 400 draws: NNGP within a few percent."""
    x1, x2 = x_fc
    net = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.3, parameterization=param), stax.Relu(),
                      stax.Dense(32, W_std=1.2, b_std=0.1, parameterization=param))
    emp = mc_nngp(net, x1, x2, 300)[:, :, 0, 0]
    exact = net.kernel_fn(x1, x2, "nngp")
    scale = np.sqrt(np.outer(np.diag(net.kernel_fn(x1, None, "nngp")),
                             np.diag(net.kernel_fn(x2, None, "nngp"))))
    assert np.max(np.abs(emp - exact) / scale) < 0.04


def test_bad_inputs_name_the_layer(x_fc):
    init_fn, apply_fn, kernel_fn = fc_net()
    _, params = init_fn(0, x_fc[0].shape)
    with pytest.raises(ValueError, match=r"Dense\(64\): expected inputs with 7 channels"):
        apply_fn(params, np.ones((3, 5)))
    bad = np.array(x_fc[0]); bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x1.*NaN"):
        kernel_fn(bad)
    with pytest.raises(ValueError, match="Relu: the closed-form kernel needs a Gaussian input"):
        stax.serial(stax.Relu()).kernel_fn(x_fc[0])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        kernel_fn(np.ones(5))


def test_init_accepts_seed_and_generator(x_fc):
    init_fn = fc_net().init_fn
    _, p1 = init_fn(3, x_fc[0].shape)
    _, p2 = init_fn(np.random.default_rng(3), x_fc[0].shape)
    np.testing.assert_array_equal(p1[0][0], p2[0][0])
    with pytest.raises(TypeError, match="rng"):
        init_fn("seed", x_fc[0].shape)


def test_same_batch_twice_is_the_symmetric_case(x_fc):
    """kernel_fn(x, x) is kernel_fn(x) (NT's x1_is_x2), and the self-diagonal is exact."""
    net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(8), stax.Sign(), stax.Dense(1))
    a, b = net.kernel_fn(x_fc[0], np.array(x_fc[0])), net.kernel_fn(x_fc[0])
    assert a.x1_is_x2
    np.testing.assert_array_equal(a.ntk, b.ntk)
    k_in = stax.Dense(3).kernel_fn(x_fc[0])
    np.testing.assert_array_equal(np.diag(k_in.nngp), k_in.cov1)


def test_fan_in_sum_refuses_broadcasting():
    _, apply_fn, _ = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(3), stax.Dense(1)),
                                 stax.FanInSum())
    params = ((), ((np.ones((4, 3)), None), (np.ones((4, 1)), None)), ())
    with pytest.raises(ValueError, match="FanInSum: all branches must have the same shape"):
        apply_fn(params, np.ones((2, 4)))


def test_dropout_layers_in_serial_draw_independent_masks():
    net = stax.serial(stax.Dropout(0.5), stax.Dropout(0.5))
    _, params = net.init_fn(0, (1, 4000))
    y = net.apply_fn(params, np.ones((1, 4000)), rng=7)
    # independent masks keep a unit with probability 1/4 (then scaled by 4); shared ones 1/2
    kept = np.mean(y != 0)
    assert abs(kept - 0.25) < 0.03, kept
