"""The demo's figure (matplotlib, the ``plot`` extra): outputs over the input at a few times,
and train / test loss and output variance over training time, finite against infinite width."""
import numpy as np

from .sine import gaussian_loss, gaussian_loss_quantiles

__all__ = ["plot_demo", "have_matplotlib"]


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _outputs_panel(ax, res, i):
    x, xt = res.x_train[:, 0], res.x_test[:, 0]
    mean = res.inf_mean_test[i][:, 0]
    sd = np.sqrt(np.clip(np.diagonal(res.inf_cov_test[i]), 0.0, None))
    ax.fill_between(xt, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25,
                    label="infinite width: mean ± 2σ")
    ax.plot(xt, mean, color="C0", lw=2)
    for m in range(res.finite_test.shape[1]):
        ax.plot(xt, res.finite_test[i, m, :, 0], color="C1", lw=0.5, alpha=0.35,
                label="finite networks" if m == 0 else None)
    ax.plot(xt, res.finite_test[i].mean(axis=0)[:, 0], color="C3", lw=1.5, ls="--",
            label="finite ensemble mean")
    ax.plot(xt, res.y_test[:, 0], color="k", lw=1, ls=":", label="sin(x)")
    ax.plot(x, res.y_train[:, 0], "ko", ms=4, label="training data")
    ax.set_title(f"t = {res.t[i]:.3g} (step {int(res.steps[i])})")
    ax.set_xlabel("x")


def _curve_panel(ax, t, fin, inf_mean, inf_q, title):
    """Losses over time (log-log, t > 0): infinite-width expectation and 10-90% band, finite
    ensemble mean and 10-90% band over members."""
    keep = t > 0
    t = t[keep]
    fq = np.quantile(fin[keep], [0.1, 0.9], axis=1)
    ax.fill_between(t, inf_q[keep, 0], inf_q[keep, 1], color="C0", alpha=0.25)
    ax.plot(t, inf_mean[keep], color="C0", lw=2, label="infinite width: mean, 10-90%")
    ax.fill_between(t, fq[0], fq[1], color="C1", alpha=0.25)
    ax.plot(t, fin[keep].mean(axis=1), color="C1", lw=1.5, ls="--",
            label="finite networks: mean, 10-90%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t = steps × learning rate")
    ax.set_title(title)


def _variance_panel(ax, res):
    keep = res.t > 0
    var_fin = res.finite_test.var(axis=1, ddof=1)[..., 0].mean(axis=1)
    var_inf = np.clip(np.diagonal(res.inf_cov_test, axis1=1, axis2=2), 0, None).mean(axis=1)
    ax.plot(res.t[keep], var_inf[keep], color="C0", lw=2, label="infinite width")
    ax.plot(res.t[keep], var_fin[keep], color="C1", lw=1.5, ls="--", label="finite networks")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t = steps × learning rate")
    ax.set_title("output variance (mean over test inputs)")
    ax.legend(fontsize=8)


def plot_demo(res, path):
    """Write the figure to ``path`` (any format matplotlib knows from the extension)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    last = len(res.t) - 1
    for ax, i in zip(axes[0], (0, int(round(last * 0.55)), last)):
        _outputs_panel(ax, res, i)
    axes[0][0].legend(loc="lower right", fontsize=8)
    q = [0.1, 0.9]
    for ax, name, mean, cov, y, fin in (
            (axes[1][0], "training loss", res.inf_mean_train, res.inf_cov_train, res.y_train,
             res.finite_loss_train),
            (axes[1][1], "test loss", res.inf_mean_test, res.inf_cov_test, res.y_test,
             res.finite_loss_test)):
        _curve_panel(ax, res.t, fin, gaussian_loss(mean, cov, y)[0],
                     gaussian_loss_quantiles(mean, cov, y, q), name)
    axes[1][0].legend(fontsize=8)
    _variance_panel(axes[1][2], res)
    c = res.config
    fig.suptitle(f"{c.members} networks of width {c.width} ({c.depth} hidden {c.activation} "
                 f"layer{'s' if c.depth > 1 else ''}) trained by gradient descent vs the "
                 "infinite-width NTK ensemble")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
