"""No argument accepted in silence by the predictors, the finite-width kernels and the
gradients: an unknown keyword is a ``TypeError`` that names it."""
import numpy as np
import pytest

from infwide import empirical_kernel_fn, monte_carlo_kernel_fn, predict, stax, vjp

RNG = np.random.default_rng(0)
X_TRAIN, X_TEST = RNG.standard_normal((6, 3)), RNG.standard_normal((2, 3))
Y_TRAIN = RNG.standard_normal((6, 1))
NET = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
K_DD = NET.kernel_fn(X_TRAIN, None, "ntk")
K_TD = NET.kernel_fn(X_TEST, X_TRAIN, "ntk")


@pytest.mark.parametrize("factory", [
    lambda **kw: predict.gradient_descent_mse(K_DD, Y_TRAIN, **kw),
    lambda **kw: predict.gp_inference(K_DD, Y_TRAIN, **kw),
    lambda **kw: predict.gradient_descent(predict.mse, K_DD, Y_TRAIN, **kw),
    lambda **kw: predict.max_learning_rate(K_DD, **kw),
], ids=["gradient_descent_mse", "gp_inference", "gradient_descent", "max_learning_rate"])
def test_a_predictor_factory_refuses_an_unknown_keyword(factory):
    factory()
    with pytest.raises(TypeError, match="diag_regg"):
        factory(diag_regg=1e-3)


@pytest.mark.parametrize("call", [
    lambda: predict.gradient_descent_mse(K_DD, Y_TRAIN)(1.0, k_test_trian=K_TD),
    lambda: predict.gp_inference(K_DD, Y_TRAIN)("ntk", k_test_trian=K_TD),
    lambda: predict.gradient_descent(predict.mse, K_DD, Y_TRAIN)(1.0, k_test_trian=K_TD),
], ids=["gradient_descent_mse", "gp_inference", "gradient_descent"])
def test_a_predict_fn_refuses_an_unknown_keyword(call):
    with pytest.raises(TypeError, match="k_test_trian"):
        call()


def test_the_ensemble_passes_its_keywords_to_kernel_fn_which_refuses_unknown_ones():
    ok = predict.gradient_descent_mse_ensemble(NET.kernel_fn, X_TRAIN, Y_TRAIN)
    assert ok(1.0, X_TEST, "ntk").shape == (2, 1)
    bad = predict.gradient_descent_mse_ensemble(NET.kernel_fn, X_TRAIN, Y_TRAIN, W_stdd=2.0)
    with pytest.raises(TypeError, match="kernel_fn: unknown keyword argument.*'W_stdd'"):
        bad(1.0, X_TEST, "ntk")   # the kernels are computed on first need, as in NT
    with pytest.raises(TypeError, match="'W_stdd'"):
        ok(1.0, X_TEST, "ntk", W_stdd=2.0)


def test_finite_width_kernels_and_gradients_take_rng_only():
    net = stax.serial(stax.Dense(16), stax.Dropout(0.5), stax.Dense(1))
    _, params = net.init_fn(0, X_TRAIN.shape)
    emp = empirical_kernel_fn(net)
    a, b = (emp(X_TRAIN, None, "nngp", params, rng=r) for r in (1, 2))
    assert not np.allclose(a, b)   # the rng reaches Dropout
    with pytest.raises(TypeError, match="unknown keyword argument.*'mode'"):
        emp(X_TRAIN, None, "nngp", params, rng=1, mode="test")
    mc = monte_carlo_kernel_fn(net.init_fn, net.apply_fn, 0, 2)
    with pytest.raises(TypeError, match="'rgn'"):
        mc(X_TRAIN, None, "nngp", rgn=1)
    with pytest.raises(TypeError, match="vjp: unknown keyword argument.*'rgn'"):
        vjp(net, params, X_TRAIN, rgn=1)
