"""infwide.sklearn: the posterior against Neural Tangents, scikit-learn's estimator checks,
Pipeline/GridSearchCV, and accuracy on digits."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from infwide import data, stax  # noqa: E402
from infwide.sklearn import (InfiniteWidthClassifier, InfiniteWidthRegressor,  # noqa: E402
                             build_network)
from infwide.sklearn._posterior import Posterior  # noqa: E402

from tests.conftest import nt_fixture  # noqa: E402

FIX = nt_fixture("sklearn_posterior.npz")


@parametrize_with_checks([InfiniteWidthRegressor(), InfiniteWidthClassifier(),
                          InfiniteWidthRegressor(get="nngp", t=1e4, normalize_y=True),
                          InfiniteWidthClassifier(get="nngp", t=1e4)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("t", ["inf", "0.5", "20"])
def test_posterior_matches_neural_tangents(get, t):
    """Mean and variance agree with NT's gradient_descent_mse_ensemble (fixture)."""
    post = Posterior(FIX[f"{get}_dd"], FIX["nngp_dd"], FIX["y_train"], diag_reg=1e-3,
                     learning_rate=0.7)
    tt = None if t == "inf" else float(t)
    mean = post.mean(FIX[f"{get}_td"], tt)
    np.testing.assert_allclose(mean, FIX[f"{get}_t{t}_mean"], rtol=1e-8, atol=1e-10)
    var = post.variance(get, FIX[f"{get}_td"], FIX["nngp_td"], FIX["nngp_tt_diag"], tt)
    np.testing.assert_allclose(var, FIX[f"{get}_t{t}_var"], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_regressor_end_to_end_matches_neural_tangents(get):
    """The fc network's kernels and the fitted estimator reproduce NT's predictions."""
    reg = InfiniteWidthRegressor(get=get, t=20.0, learning_rate=0.7, diag_reg=1e-3)
    reg.fit(FIX["x_train"], FIX["y_train"])
    mean, std = reg.predict(FIX["x_test"], return_std=True)
    np.testing.assert_allclose(mean, FIX[f"{get}_t20_mean"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(std[:, 0] ** 2, FIX[f"{get}_t20_var"], rtol=1e-6, atol=1e-9)
    assert std.shape == mean.shape


def test_training_time_limits_and_std():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    r0 = InfiniteWidthRegressor(t=0.0).fit(x, y)
    np.testing.assert_allclose(r0.predict(x[:5]), 0, atol=1e-12)       # untrained: prior mean
    late = InfiniteWidthRegressor(t=1e9).fit(x, y).predict(x[:5])
    end = InfiniteWidthRegressor().fit(x, y)
    np.testing.assert_allclose(late, end.predict(x[:5]), rtol=1e-6)
    mean, std = end.predict(x[:5], return_std=True)
    assert mean.shape == std.shape == (5,) and np.all(std < 0.1)      # training points: ~exact
    _, std_far = end.predict(10 * rng.standard_normal((5, 4)), return_std=True)
    assert np.all(std_far > 10 * std.max())


def test_classifier_pickles_and_proba():
    d = data.load_digits(n_train=200, n_test=100)
    x_tr, x_te = d.x_train.reshape(200, -1) / 16, d.x_test.reshape(100, -1) / 16
    clf = InfiniteWidthClassifier().fit(x_tr, d.y_train)
    p = clf.predict_proba(x_te)
    np.testing.assert_allclose(p.sum(1), 1)
    np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(x_te))
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(x_te), clf.predict(x_te))
    assert clf.score(x_te, d.y_test) > 0.9


def test_pipeline_and_grid_search():
    d = data.load_digits(n_train=300, n_test=200)
    x_tr, x_te = d.x_train.reshape(300, -1), d.x_test.reshape(200, -1)
    pipe = make_pipeline(StandardScaler(), InfiniteWidthClassifier())
    grid = GridSearchCV(pipe, {"infinitewidthclassifier__get": ["nngp", "ntk"],
                               "infinitewidthclassifier__diag_reg": [1e-4, 1e-1]}, cv=3)
    grid.fit(x_tr, d.y_train)
    assert set(grid.best_params_) == {"infinitewidthclassifier__get",
                                      "infinitewidthclassifier__diag_reg"}
    assert grid.score(x_te, d.y_test) > 0.93


def test_any_layer_as_network():
    net = stax.serial(stax.Dense(8, W_std=1.2, b_std=0.1), stax.Relu(), stax.Dense(1))
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    r = InfiniteWidthRegressor(network=net, get="nngp").fit(x, y)
    k = net.kernel_fn(x[:4], x, "nngp")
    kd = net.kernel_fn(x, None, "nngp")
    ridge = 1e-4 * np.trace(kd) / 20
    np.testing.assert_allclose(r.predict(x[:4]), k @ np.linalg.solve(kd + ridge * np.eye(20), y),
                               rtol=1e-8)


def test_bad_parameters_are_named():
    x, y = np.zeros((4, 2)), np.arange(4.0)
    with pytest.raises(ValueError, match="get must be 'nngp' or 'ntk', got 'gp'"):
        InfiniteWidthRegressor(get="gp").fit(x, y)
    with pytest.raises(ValueError, match="t must be a number >= 0"):
        InfiniteWidthRegressor(t=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; expected one of fc, cnn, "
                                         "cnn-gap, myrtle5, myrtle7, myrtle10, wrn"):
        InfiniteWidthRegressor(network="resnet").fit(x, y)
    with pytest.raises(ValueError, match="input_shape"):
        InfiniteWidthRegressor(network="cnn").fit(x, y)
    with pytest.raises(ValueError, match=r"input_shape \(3, 3\) holds 9 values but each input has 2"):
        InfiniteWidthRegressor(input_shape=(3, 3)).fit(x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        InfiniteWidthClassifier().fit(x, np.zeros(4, int))
    assert build_network("FC").kernel_fn(x + 1, None, "nngp").shape == (4, 4)


@pytest.mark.parametrize("t", [None, 0.5, 20.0])
def test_posterior_mean_matches_infwide_predict(t):
    """The estimators' cached eigenbasis gives infwide.predict's means (same conventions)."""
    from infwide import predict
    post = Posterior(FIX["ntk_dd"], FIX["nngp_dd"], FIX["y_train"], diag_reg=1e-3,
                     learning_rate=0.7)
    if t is None:
        ref = predict.gp_inference(FIX["ntk_dd"], FIX["y_train"], diag_reg=1e-3)(
            get="ntk", k_test_train=FIX["ntk_td"])
    else:
        ref = predict.gradient_descent_mse(FIX["ntk_dd"], FIX["y_train"], learning_rate=0.7,
                                           diag_reg=1e-3)(t, 0.0, 0.0, FIX["ntk_td"])[1]
    np.testing.assert_allclose(post.mean(FIX["ntk_td"], t), ref, rtol=1e-8, atol=1e-10)


def test_scikit_learn_imported_only_when_an_estimator_is_asked_for():
    code = ("import sys, infwide, infwide.data, infwide.sklearn, infwide.cli.classify\n"
            "assert not any(m.split('.')[0] == 'sklearn' for m in sys.modules), 'too early'\n"
            "from infwide.sklearn import InfiniteWidthRegressor\n"
            "assert 'sklearn' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
