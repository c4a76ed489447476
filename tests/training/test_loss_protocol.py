"""One loss protocol and one normalisation, NT's (issue 19): ``infwide.grad(f, 'cross_entropy')``
is the gradient of NT's example loss ``-mean(log_softmax(fx) * y)``, and every spelling of a
loss (name, ``predict.cross_entropy``, ``Loss(fn, grad)``, ``(fn, grad)``, plain function) is
accepted by training and by ``predict.gradient_descent`` alike."""
import warnings

import numpy as np
import pytest
from scipy.special import log_softmax

import infwide
from infwide import predict, stax
from infwide.losses import SlowGradientWarning
from infwide.params import tree_leaves


def nt_example_loss(fx, y):
    """NT's examples: ``loss = lambda fx, y_hat: -np.mean(jax.nn.log_softmax(fx) * y_hat)``."""
    return -np.mean(log_softmax(fx, axis=-1) * y)


@pytest.fixture(scope="module")
def problem():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(8, b_std=0.1), stax.Relu(), stax.Dense(10))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    y = np.eye(10)[rng.integers(0, 10, 5)]
    _, params = init_fn(1, x.shape)
    return apply_fn, params, x, y


def _fd_param_grad(apply_fn, params, x, y, eps=1e-6):
    """Central differences of NT's loss in every parameter (independent of infwide's losses)."""
    out = []
    for a in tree_leaves(params):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = nt_example_loss(apply_fn(params, x), y)
            a[idx] = old - eps
            down = nt_example_loss(apply_fn(params, x), y)
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        out.append(g)
    return out


def test_grad_cross_entropy_is_nt_normalisation(problem):
    apply_fn, params, x, y = problem
    want = _fd_param_grad(apply_fn, params, x, y)
    for spelling in ("cross_entropy", predict.cross_entropy, infwide.training.cross_entropy_loss):
        got = infwide.grad(apply_fn, spelling)(params, x, y)
        for g, w in zip(tree_leaves(got), want):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-10)
    value, _ = infwide.value_and_grad(apply_fn, "cross_entropy")(params, x, y)
    assert value == pytest.approx(nt_example_loss(apply_fn(params, x), y), rel=1e-12)
    assert predict.cross_entropy(apply_fn(params, x), y) == pytest.approx(value, rel=1e-12)


def test_user_losses_every_spelling(problem):
    apply_fn, params, x, y = problem
    want = infwide.grad(apply_fn, "cross_entropy")(params, x, y)
    exact_grad = predict.cross_entropy.grad
    spellings = [predict.Loss(nt_example_loss, exact_grad), (nt_example_loss, exact_grad)]
    for loss in spellings:
        for g, w in zip(tree_leaves(infwide.grad(apply_fn, loss)(params, x, y)),
                        tree_leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    with pytest.warns(SlowGradientWarning, match="finite differences"):
        fd = infwide.grad(apply_fn, nt_example_loss)
    for g, w in zip(tree_leaves(fd(params, x, y)), tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_old_tuple_returning_loss_is_refused_clearly(problem):
    apply_fn, params, x, y = problem
    with pytest.warns(SlowGradientWarning):
        g = infwide.grad(apply_fn, lambda fx, yy: (0.0, fx))
    with pytest.raises(TypeError, match=r"return a scalar.*Loss\(fn, grad\)"):
        g(params, x, y)
    with pytest.raises(ValueError, match="unknown loss 'xent'"):
        infwide.grad(apply_fn, "xent")


def test_gradient_descent_user_loss_fast_path_equals_fallback():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 6))
    k = a @ a.T / 6 + np.eye(6)
    y = np.eye(3)[rng.integers(0, 3, 6)]
    ts = np.array([0.5, 2.0])
    exact = predict.gradient_descent(predict.Loss(nt_example_loss, predict.cross_entropy.grad),
                                     k, y, learning_rate=1.0)
    with pytest.warns(SlowGradientWarning):
        slow = predict.gradient_descent(lambda fx, yy: nt_example_loss(fx, yy), k, y)
    builtin = predict.gradient_descent("cross_entropy", k, y)
    np.testing.assert_allclose(exact(ts, 0.), builtin(ts, 0.), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(slow(ts, 0.), builtin(ts, 0.), rtol=1e-6, atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict.gradient_descent((nt_example_loss, predict.cross_entropy.grad), k, y)(ts, 0.)
