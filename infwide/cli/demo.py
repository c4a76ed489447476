"""``infwide demo``: finite networks trained by gradient descent against the infinite-width
NTK ensemble on an embedded 1-d regression (noisy samples of a sine; no download).

Prints a table comparing, at several times ``t = steps * learning_rate``, the finite ensemble's
mean, variance and losses with the closed-form infinite-width ones, and writes a figure
(``demo.png``, needs matplotlib: the ``plot`` extra) and the table (``demo.json``) to ``--out``.
"""
import dataclasses
import json
import os
import sys
import time

from ._args import positive_int

__all__ = ["add_parser", "run", "format_table"]

_COLUMNS = (  # (key, header, width, format)
    ("t", "t", 8, "{:.3g}"), ("step", "step", 5, "{:d}"),
    ("mean_gap_max", "|Δmean|", 8, "{:.3f}"), ("band_min", "2σ min", 7, "{:.3f}"),
    ("in_band", "in 2σ", 6, "{:.0%}"),
    ("var_finite", "var fin", 8, "{:.4f}"), ("var_infinite", "var inf", 8, "{:.4f}"),
    ("loss_train_finite", "train fin", 9, "{:.4f}"),
    ("loss_train_infinite", "train inf", 9, "{:.4f}"),
    ("loss_test_finite", "test fin", 9, "{:.4f}"), ("loss_test_infinite", "test inf", 9, "{:.4f}"),
)


def format_table(rows):
    """The comparison table as text (one line per time, columns right-aligned)."""
    lines = [" ".join(h.rjust(w) for _, h, w, _ in _COLUMNS)]
    for r in rows:
        lines.append(" ".join(fmt.format(r[k]).rjust(w) for k, _, w, fmt in _COLUMNS))
    return "\n".join(lines)


def _config(args):
    from ..demo import DemoConfig
    return DemoConfig(n_train=args.n_train, n_test=args.n_test, noise=args.noise,
                      depth=args.depth, width=args.width, members=args.members,
                      activation=args.activation, steps=args.steps,
                      learning_rate=args.lr or 0.0, seed=args.seed)


def _describe(cfg, res):
    how = (f"{res.learning_rate:.4g} (given)" if cfg.learning_rate > 0 else
           f"{res.learning_rate:.4g} = {cfg.lr_fraction:g} x predict.max_learning_rate of the "
           "analytic NTK")
    return (f"infwide demo: {cfg.n_train} noisy samples of sin(x) on [-pi, pi] (noise sd "
            f"{cfg.noise:g}), {cfg.n_test} test inputs\n"
            f"  finite: {cfg.members} networks of width {cfg.width}, {cfg.depth} hidden "
            f"{cfg.activation} layer(s), full-batch gradient descent for {cfg.steps} steps, "
            f"learning rate {how}\n"
            "  infinite: predict.gradient_descent_mse_ensemble with the analytic NTK "
            "(closed-form mean and covariance)\n"
            "  loss = |f - y|^2 / (2 N), t = steps x learning rate; |Δmean| = max over test "
            "inputs of |finite ensemble mean - infinite mean|;\n"
            "  in 2σ = share of test inputs where the finite mean lies in the infinite "
            "mean ± 2σ band; var, losses: averages over members / expectations")


def _write(args, res, rows, elapsed):
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "demo.json"), "w") as f:
        json.dump({"config": dataclasses.asdict(res.config), "learning_rate": res.learning_rate,
                   "seconds": elapsed, "rows": rows}, f, indent=1)
    if args.no_plot:
        return None
    from ..demo.plot import have_matplotlib, plot_demo
    if not have_matplotlib():
        print('infwide demo: matplotlib is not installed (pip install "infwide[plot]"); '
              "figure skipped", file=sys.stderr)
        return None
    return plot_demo(res, os.path.join(args.out, "demo.png"))


def run(args):
    from ..demo import run_demo, summary_rows
    cfg = _config(args)
    t0 = time.perf_counter()
    res = run_demo(cfg, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    rows = summary_rows(res, args.rows)
    print(_describe(cfg, res))
    print(format_table(rows))
    worst = min(r["in_band"] for r in rows)
    print(f"finite ensemble mean inside the infinite-width 2σ band: {worst:.0%} of test inputs "
          f"at worst over the times above; trained and predicted in {elapsed:.1f} s")
    figure = _write(args, res, rows, elapsed)
    print(f"wrote {os.path.join(args.out, 'demo.json')}" +
          (f" and {figure}" if figure else ""))
    return 0


def _positive_float(text):
    import argparse
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def add_parser(sub):
    from ..demo.sine import DemoConfig
    c = DemoConfig()
    d = sub.add_parser("demo", help="finite networks trained by gradient descent vs the "
                       "infinite-width NTK ensemble (1-d regression, figure and table)")
    d.add_argument("--out", default="infwide-demo", help="folder for demo.png and demo.json")
    d.add_argument("--width", type=positive_int, default=c.width, help="hidden width")
    d.add_argument("--members", type=positive_int, default=c.members,
                   help="finite networks trained (at least 2)")
    d.add_argument("--depth", type=positive_int, default=c.depth, help="hidden layers")
    d.add_argument("--activation", choices=["erf", "relu", "gelu"], default=c.activation)
    d.add_argument("--steps", type=positive_int, default=c.steps, help="gradient descent steps")
    d.add_argument("--lr", type=_positive_float, default=None,
                   help=f"learning rate (default: {c.lr_fraction:g} x predict.max_learning_rate "
                   "of the analytic NTK)")
    d.add_argument("--n-train", type=positive_int, default=c.n_train, help="training points")
    d.add_argument("--n-test", type=positive_int, default=c.n_test, help="test inputs")
    d.add_argument("--noise", type=float, default=c.noise, help="label noise standard deviation")
    d.add_argument("--seed", type=int, default=c.seed)
    d.add_argument("--rows", type=positive_int, default=6, help="times shown in the table")
    d.add_argument("--no-plot", action="store_true", help="skip the figure")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=run)
