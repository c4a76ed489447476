"""Neural Tangents' ensemble predictions for tests/sklearn/test_sklearn.py (run with the NT oracle
python: /tmp/nt-oracle/bin/python tests/nt_fixtures/make_sklearn_posterior.py).

A 2-hidden-layer ReLU network (infwide.sklearn.networks.fc's defaults), 9 training and 4 test
inputs, 3 outputs; posterior means and covariance diagonals from
``predict.gradient_descent_mse_ensemble`` for get in (nngp, ntk) at t in (None, 0.5, 20),
with a relative diag_reg of 1e-3 and learning_rate 0.7.
"""
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
from neural_tangents import predict, stax  # noqa: E402

rng = np.random.default_rng(7)
x_train, x_test = rng.standard_normal((9, 5)), rng.standard_normal((4, 5))
y_train = rng.standard_normal((9, 3))
w, b = float(np.sqrt(2.0)), 0.05
_, _, kernel_fn = stax.serial(stax.Dense(512, W_std=w, b_std=b), stax.Relu(),
                              stax.Dense(512, W_std=w, b_std=b), stax.Relu(),
                              stax.Dense(1, W_std=w, b_std=b))
out = {"x_train": x_train, "x_test": x_test, "y_train": y_train}
kdd = kernel_fn(x_train, None, ("nngp", "ntk"))
ktd = kernel_fn(x_test, x_train, ("nngp", "ntk"))
ktt = kernel_fn(x_test, None, "nngp")
for g in ("nngp", "ntk"):
    out[f"{g}_dd"], out[f"{g}_td"] = np.asarray(getattr(kdd, g)), np.asarray(getattr(ktd, g))
out["nngp_tt_diag"] = np.diag(np.asarray(ktt))
predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate=0.7,
                                                   diag_reg=1e-3)
for g in ("nngp", "ntk"):
    for name, t in (("inf", None), ("0.5", 0.5), ("20", 20.0)):
        mean, cov = predict_fn(t=t, x_test=x_test, get=g, compute_cov=True)
        out[f"{g}_t{name}_mean"] = np.asarray(mean)
        out[f"{g}_t{name}_var"] = np.diag(np.asarray(cov))
np.savez(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sklearn_posterior.npz"), **out)
