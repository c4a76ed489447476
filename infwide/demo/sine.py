"""The sine demo: an ensemble of finite networks trained by gradient descent against the
closed-form infinite-width NTK ensemble, over training time.

Data (embedded, no download): ``n_train`` noisy samples ``y = sin(x) + noise`` at inputs drawn
uniformly in ``[-pi, pi]``, and a noise-free test grid on the same interval.

Finite side: ``members`` networks of width ``width`` (``depth`` ReLU hidden layers, NTK
parameterization), each initialised independently and trained by full-batch gradient descent on
``||f - y||^2 / (2 N K)`` (``infwide.train_mse``).

Infinite side: ``predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train)`` with the
analytic NTK: the outputs of an infinite ensemble of infinitely wide networks at time ``t`` are
Gaussian with a closed-form mean and covariance (Lee et al. 2019, eqs. 15-16).

Both sides use the same time ``t = steps * learning_rate``. The expected squared loss of the
Gaussian outputs ``r = f - y ~ N(mu, Sigma)`` is ``(|mu|^2 + tr Sigma) / (2 N K)``, with
standard deviation ``sqrt(2 tr Sigma^2 + 4 mu^T Sigma mu) / (2 N K)`` across the ensemble.
"""
import dataclasses
from typing import Any

import numpy as np

from .. import predict, stax
from ..training import init_ensemble, train_mse

__all__ = ["DemoConfig", "DemoResult", "sine_data", "network", "record_steps", "run_demo",
           "summary_rows", "gaussian_loss", "gaussian_loss_quantiles"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    n_train: int = 8
    n_test: int = 101
    noise: float = 0.1
    depth: int = 1
    width: int = 2048
    members: int = 20
    activation: str = "erf"
    W_std: float = 1.5
    b_std: float = 0.5
    out_W_std: float = 1.0
    out_b_std: float = 0.05
    steps: int = 2000
    lr_fraction: float = 0.15  # of predict.max_learning_rate of the analytic NTK
    learning_rate: float = 0.0  # > 0 overrides lr_fraction
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class DemoResult:
    config: DemoConfig
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    t: Any                 # (T,) times steps * learning_rate
    steps: Any             # (T,)
    learning_rate: float
    finite_train: Any      # (T, M, N, 1)
    finite_test: Any       # (T, M, N_test, 1)
    finite_loss_train: Any  # (T, M)
    finite_loss_test: Any   # (T, M)
    inf_mean_train: Any    # (T, N, 1)
    inf_cov_train: Any     # (T, N, N)
    inf_mean_test: Any     # (T, N_test, 1)
    inf_cov_test: Any      # (T, N_test, N_test)


def sine_data(n_train, n_test, noise, seed):
    """Noisy samples of ``sin`` on ``[-pi, pi]`` and a noise-free test grid (float64).

    The training inputs are jittered cell centres (one per cell of width ``2 pi / n_train``,
    uniform within the middle half of the cell): random, but never two nearly on top of each
    other, which would ask any model to fit the label noise with an arbitrarily steep slope."""
    rng = np.random.default_rng(seed)
    cell = 2 * np.pi / n_train
    x_train = (-np.pi + cell * (np.arange(n_train) + 0.25 + 0.5 * rng.uniform(size=n_train)))
    x_train = x_train[:, None]
    y_train = np.sin(x_train) + noise * rng.standard_normal(x_train.shape)
    x_test = np.linspace(-np.pi, np.pi, n_test)[:, None]
    return x_train, y_train, x_test, np.sin(x_test)


_ACTIVATIONS = {"relu": stax.Relu, "erf": stax.Erf, "gelu": stax.Gelu}


def network(depth, width, W_std, b_std, out_W_std, out_b_std, activation="relu"):
    """``depth`` hidden layers of ``width`` units (``activation``) and a scalar readout."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"demo: unknown activation {activation!r}; expected one of "
                         f"{sorted(_ACTIVATIONS)}.")
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std), _ACTIVATIONS[activation]()]
    return stax.serial(*layers, stax.Dense(1, W_std=out_W_std, b_std=out_b_std))


def record_steps(total, n=40):
    """``0`` and about ``n`` log-spaced step counts up to ``total`` (integers, unique)."""
    s = np.unique(np.rint(np.geomspace(1, max(total, 1), n)).astype(np.int64))
    return np.concatenate([[0], s[s <= total]])


def _check(cfg):
    for name in ("n_train", "n_test", "depth", "width", "members", "steps"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"demo: `{name}` must be a positive integer, got {getattr(cfg, name)}.")
    if cfg.members < 2:
        raise ValueError(f"demo: an ensemble needs at least 2 members, got {cfg.members}.")
    if not 0 < cfg.lr_fraction < 1 and cfg.learning_rate <= 0:
        raise ValueError(f"demo: `lr_fraction` must be in (0, 1), got {cfg.lr_fraction}.")


def run_demo(cfg=DemoConfig(), progress=None):
    """Train the finite ensemble and evaluate the infinite-width ensemble at the same times."""
    _check(cfg)
    x_train, y_train, x_test, y_test = sine_data(cfg.n_train, cfg.n_test, cfg.noise, cfg.seed)
    net = network(cfg.depth, cfg.width, cfg.W_std, cfg.b_std, cfg.out_W_std, cfg.out_b_std,
                  cfg.activation)
    ntk_train = net.kernel_fn(x_train, None, "ntk")
    lr = cfg.learning_rate if cfg.learning_rate > 0 else \
        cfg.lr_fraction * predict.max_learning_rate(ntk_train, y_train.size)
    steps = record_steps(cfg.steps)
    members = init_ensemble(net.init_fn, cfg.seed + 1, x_train.shape, cfg.members)
    traj = train_mse(net, members, x_train, y_train, steps * lr, learning_rate=lr,
                     x_test=x_test, y_test=y_test, progress=progress)
    ens = predict.gradient_descent_mse_ensemble(net.kernel_fn, x_train, y_train)
    on_train = ens(t=traj.t, x_test=None, get="ntk", compute_cov=True)
    on_test = ens(t=traj.t, x_test=x_test, get="ntk", compute_cov=True)
    return DemoResult(cfg, x_train, y_train, x_test, y_test, traj.t, traj.steps, float(lr),
                      traj.fx_train, traj.fx_test, traj.loss_train, traj.loss_test,
                      on_train.mean, on_train.covariance, on_test.mean, on_test.covariance)


def gaussian_loss(mean, cov, y):
    """Mean and standard deviation of ``||f - y||^2 / (2 y.size)`` for ``f ~ N(mean, cov)``
    (one output channel): ``E = (|mu|^2 + tr S) / 2n``, ``Var = (2 tr S^2 + 4 mu^T S mu) / 4n^2``."""
    mu = (mean - y)[..., 0]
    n2 = 2.0 * y.size
    expect = ((mu * mu).sum(-1) + np.trace(cov, axis1=-2, axis2=-1)) / n2
    var = 2 * np.einsum("...ij,...ji->...", cov, cov) + 4 * np.einsum("...i,...ij,...j->...",
                                                                      mu, cov, mu)
    return expect, np.sqrt(np.maximum(var, 0.0)) / n2


def gaussian_loss_quantiles(mean, cov, y, quantiles, n_samples=4000, seed=0):
    """Quantiles (over the ensemble) of ``||f - y||^2 / (2 y.size)`` for ``f ~ N(mean, cov)``,
    at each leading index (time), estimated from ``n_samples`` draws: shape ``(T, len(q))``."""
    rng = np.random.default_rng(seed)
    out = []
    for m, c in zip(mean, cov):
        w, v = np.linalg.eigh((c + c.T) / 2)
        root = v * np.sqrt(np.clip(w, 0.0, None))
        f = m[:, 0] + rng.standard_normal((n_samples, len(w))) @ root.T
        losses = ((f - y[:, 0]) ** 2).sum(axis=1) / (2.0 * y.size)
        out.append(np.quantile(losses, quantiles))
    return np.array(out)


def summary_rows(res, n_rows=6):
    """Rows of the comparison table at ``n_rows`` times spread over training (computed)."""
    idx = np.unique(np.rint(np.linspace(0, len(res.t) - 1, n_rows)).astype(int))
    inf_train, inf_train_sd = gaussian_loss(res.inf_mean_train, res.inf_cov_train, res.y_train)
    inf_test, inf_test_sd = gaussian_loss(res.inf_mean_test, res.inf_cov_test, res.y_test)
    rows = []
    for i in idx:
        f_mean = res.finite_test[i].mean(axis=0)[:, 0]
        f_var = res.finite_test[i].var(axis=0, ddof=1)[:, 0]
        m_inf = res.inf_mean_test[i][:, 0]
        var_inf = np.clip(np.diagonal(res.inf_cov_test[i]), 0.0, None)
        sd = np.sqrt(var_inf)
        gap = np.abs(f_mean - m_inf)
        rows.append(dict(
            t=float(res.t[i]), step=int(res.steps[i]),
            mean_gap_max=float(gap.max()), band_min=float(2 * sd.min()),
            in_band=float(np.mean(gap <= 2 * sd)),
            var_finite=float(f_var.mean()), var_infinite=float(var_inf.mean()),
            loss_train_finite=float(res.finite_loss_train[i].mean()),
            loss_train_finite_sd=float(res.finite_loss_train[i].std(ddof=1)),
            loss_train_infinite=float(inf_train[i]), loss_train_infinite_sd=float(inf_train_sd[i]),
            loss_test_finite=float(res.finite_loss_test[i].mean()),
            loss_test_finite_sd=float(res.finite_loss_test[i].std(ddof=1)),
            loss_test_infinite=float(inf_test[i]), loss_test_infinite_sd=float(inf_test_sd[i])))
    return rows
