"""Full-batch gradient descent (and momentum) on the squared loss for an ensemble of finite
``stax`` networks, with Neural Tangents' conventions so that finite and infinite-width curves
share one time axis:

    loss = ||f(x_train) - y_train||^2 / (2 N K)      (N K = y_train.size)
    t    = steps * learning_rate                     (absolute time of gradient flow)

Under these, a wide network trained with a small learning rate follows
``predict.gradient_descent_mse(ntk_train_train, y_train)`` evaluated at ``t`` (Lee et al. 2019,
"Wide neural networks of any depth evolve as linear models under gradient descent", eq. 9).

Momentum is heavy-ball momentum as in ``jax.example_libraries.optimizers.momentum``:
``v <- momentum v + g``, ``params <- params - learning_rate v``; compare it with
``predict.gradient_descent(..., momentum=...)`` at the step counts (``Trajectory.steps``),
NT's time unit for momentum.
"""
import dataclasses
from typing import Any, Optional

import numpy as np

from ..backend import check_finite, get_xp
from ..device import params_to_device
from ..empirical.kernels import empirical_ntk_fn
from ..params import check_params, promote_inputs, tree_leaves, tree_map
from ..predict import max_learning_rate
from ..stax.layer import as_layer, input_shape, prepare_inputs
from ._progress import make_progress
from .ensemble import make_engine

__all__ = ["train_mse", "Trajectory", "stable_learning_rate"]

_BLOWUP = 1e6  # a loss this many times its initial value means the run diverged


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Outputs recorded while training an ensemble (leading axes ``t.shape``, then members).

    t : (T,) absolute times ``steps * learning_rate``; steps : (T,) step counts;
    fx_train : (T, M, *y_train.shape); fx_test : (T, M, N_test, ...) or None;
    loss_train : (T, M) per-member ``||f - y||^2 / (2 y.size)``; loss_test : (T, M) or None;
    params : the M members' parameters at the end; learning_rate, momentum: as given.
    """
    t: Any
    steps: Any
    fx_train: Any
    fx_test: Optional[Any]
    loss_train: Any
    loss_test: Optional[Any]
    params: Any
    learning_rate: float
    momentum: Optional[float]


def stable_learning_rate(f, params, x_train, y_train_size=None, momentum=0.0):
    """``predict.max_learning_rate`` of the network's empirical NTK on ``x_train`` (traced over
    the output channels): the largest learning rate for which gradient descent on the squared
    loss of the linearised network converges."""
    ntk = empirical_ntk_fn(f, trace_axes=(-1,))(x_train, None, params)
    n = ntk.shape[0] if y_train_size is None else y_train_size
    return float(max_learning_rate(ntk, n, momentum=momentum or 0.0))


def _times(t, learning_rate):
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"train_mse: `t` must be finite non-negative times (a scalar or a 1-d "
                         f"array; t = steps * learning_rate); got {t!r}. A finite network cannot "
                         "be trained to t = inf; use predict for the end of training.")
    steps = np.rint(t / learning_rate).astype(np.int64)
    return steps


def _members(params):
    if isinstance(params, list):
        if not params:
            raise ValueError("train_mse: `params` is an empty list; expected the parameters of "
                             "one network (a tuple from init_fn) or a list of them (an ensemble).")
        return params
    return [params]


def _diverged(where, learning_rate, bound, step, loss):
    return ValueError(
        f"{where}: training diverged at step {step} (loss {loss:.3g}) with learning_rate="
        f"{learning_rate:g}; predict.max_learning_rate(ntk_train_train, y_train.size) = "
        f"{bound:.4g} for this network's empirical NTK on x_train. Use a learning rate below it.")


def _check_data(layer, members, x_train, y_train, x_test, y_test):
    for m, p in enumerate(members):
        check_params(layer, p, input_shape(x_train), f"train_mse (member {m})")
    out_shape = layer.output_shape(input_shape(x_train))
    if tuple(y_train.shape) != tuple(out_shape):
        raise ValueError(f"train_mse: `y_train` must have the network output's shape "
                         f"{tuple(out_shape)}, got {tuple(y_train.shape)}.")
    if y_test is not None:
        if x_test is None:
            raise ValueError("train_mse: `y_test` was given without `x_test`.")
        want = tuple(layer.output_shape(input_shape(x_test)))
        if tuple(y_test.shape) != want:
            raise ValueError(f"train_mse: `y_test` must have shape {want}, got {tuple(y_test.shape)}.")


def _losses(xp, fx, y):
    r = fx - y
    return (r * r).reshape(r.shape[0], -1).sum(axis=1) / (2.0 * y.size), r / r.dtype.type(y.size)


def _sub_scaled(p, g, c):
    p -= g * p.dtype.type(c)
    return p


def _update(engine, grads, lr, momentum, velocity):
    if momentum is None:
        tree_map(lambda p, g: _sub_scaled(p, g, lr), engine.params, grads)
        return None
    if velocity is None:
        velocity = grads
    else:
        velocity = tree_map(lambda v, g: v * v.dtype.type(momentum) + g, velocity, grads)
    tree_map(lambda p, v: _sub_scaled(p, v, lr), engine.params, velocity)
    return velocity


class _Recorder:
    """Collects outputs and losses at the requested step counts."""

    def __init__(self, steps, x_test, y_test):
        self.steps = steps
        self.wanted = sorted(set(int(s) for s in steps))
        self.x_test, self.y_test = x_test, y_test
        self.rows = {}

    def maybe(self, step, engine, fx, loss):
        if step not in self.wanted or step in self.rows:
            return
        row = {"fx_train": fx.copy(), "loss_train": loss.copy()}
        if self.x_test is not None:
            ft = engine.apply(self.x_test)
            row["fx_test"] = ft
            if self.y_test is not None:
                row["loss_test"] = _losses(get_xp(ft), ft, self.y_test)[0]
        self.rows[step] = row

    def stacked(self, key):
        if key not in self.rows[self.wanted[0]]:
            return None
        xp = get_xp(self.rows[self.wanted[0]][key])
        return xp.stack([self.rows[int(s)][key] for s in self.steps])


def train_mse(f, params, x_train, y_train, t, learning_rate=1.0, momentum=None, x_test=None,
              y_test=None, dtype=None, engine="auto", progress=None, check_learning_rate=True):
    """Train an ensemble of finite networks by full-batch gradient descent on NT's squared loss.

    Parameters
    ----------
    f : a network built with ``infwide.stax`` (the Layer or its ``apply_fn``).
    params : one network's parameters (the tuple from ``init_fn``) or a list of them (an
        ensemble, e.g. from ``init_ensemble``); they are copied, never modified.
    x_train, y_train : training inputs and targets (``y_train`` shaped like ``f(x_train)``).
    t : times at which to record the outputs, ``t = steps * learning_rate`` (rounded to whole
        steps); training runs to the largest.
    learning_rate, momentum : step size; heavy-ball momentum (``None``: plain descent).
    x_test, y_test : optional test inputs (outputs recorded at ``t``) and targets (test loss).
    dtype : computation dtype (default: NumPy's promotion of ``x_train``'s dtype with the
        parameters', e.g. float64 for float32 inputs and float64 parameters; integer inputs
        become float64).
    engine : 'auto' (members stacked on one axis when the network allows it), 'stacked', 'loop'.
    progress : True for a progress bar (tqdm if installed, else plain lines), False/None.
    check_learning_rate : refuse, before training, a learning rate above
        ``predict.max_learning_rate`` of the first member's empirical NTK.

    Returns
    -------
    Trajectory with ``fx_train`` of shape ``(T, M) + y_train.shape`` and so on. A run that
    diverges (non-finite loss, or a loss 1e6 times its initial value) stops with a ValueError
    naming ``predict.max_learning_rate`` and its value for the network.
    """
    layer = as_layer(f, "train_mse")
    members = _members(params)
    x_train, y_train = prepare_inputs(x_train, "x_train"), prepare_inputs(y_train, "y_train")
    x_test = None if x_test is None else prepare_inputs(x_test, "x_test")
    y_test = None if y_test is None else prepare_inputs(y_test, "y_test")
    for name, a in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test),
                    ("y_test", y_test)):
        if a is not None and not isinstance(a, list):
            check_finite(a, name, "train_mse")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"train_mse: `learning_rate` must be a positive number, got {learning_rate!r}.")
    if momentum is not None and not 0.0 <= momentum < 1.0:
        raise ValueError(f"train_mse: `momentum` must be in [0, 1) or None, got {momentum!r}.")
    _check_data(layer, members, x_train, y_train, x_test, y_test)
    members = [params_to_device(p, x_train) for p in members]  # NumPy params follow GPU data
    steps = _times(t, learning_rate)
    if dtype is None:   # NumPy's promotion of the inputs' and the parameters' dtypes
        dtype = promote_inputs(x_train[0] if isinstance(x_train, list) else x_train,
                               members[0]).dtype
    dtype = np.dtype(dtype)
    bound = None
    if check_learning_rate:
        bound = stable_learning_rate(layer, members[0], x_train, y_train.size, momentum)
        if learning_rate > bound:
            raise _diverged_before("train_mse", learning_rate, bound)
    eng = make_engine(layer, members, dtype, engine)
    x_test = None if x_test is None else tree_map(lambda a: a.astype(dtype), x_test)
    rec = _Recorder(steps, x_test, None if y_test is None else y_test.astype(dtype))
    _run(eng, layer, members, x_train, y_train.astype(dtype), learning_rate, momentum, rec,
         bound, progress)
    return Trajectory(t=steps * float(learning_rate), steps=steps,
                      fx_train=rec.stacked("fx_train"), fx_test=rec.stacked("fx_test"),
                      loss_train=rec.stacked("loss_train"), loss_test=rec.stacked("loss_test"),
                      params=eng.members(), learning_rate=float(learning_rate), momentum=momentum)


def _diverged_before(where, learning_rate, bound):
    return ValueError(
        f"{where}: learning_rate={learning_rate:g} exceeds predict.max_learning_rate("
        f"ntk_train_train, y_train.size) = {bound:.4g} for this network's empirical NTK on "
        "x_train: gradient descent on the squared loss would diverge. Use a smaller learning "
        "rate (or check_learning_rate=False to try anyway).")


def _run(eng, layer, members, x_train, y_train, lr, momentum, rec, bound, progress):
    """The descent loop: record, check for divergence, update in place."""
    x_train = tree_map(lambda a: a.astype(_engine_dtype(eng)), x_train)
    bar = make_progress(progress, rec.wanted[-1], "training")
    velocity, first = None, None
    try:
        for step in range(rec.wanted[-1] + 1):
            fx, cache = eng.forward(x_train)
            loss, ct = _losses(get_xp(fx), fx, y_train)
            worst = float(loss.max())
            first = worst if first is None else first
            if not np.isfinite(worst) or worst > _BLOWUP * max(first, 1e-30):
                if bound is None:
                    bound = stable_learning_rate(layer, members[0], x_train, y_train.size, momentum)
                raise _diverged("train_mse", lr, bound, step, worst)
            rec.maybe(step, eng, fx, loss)
            if step == rec.wanted[-1]:
                break
            velocity = _update(eng, eng.backward(cache, ct), lr, momentum, velocity)
            bar.update(1)
    finally:
        bar.close()


def _engine_dtype(eng):
    return tree_leaves(eng.params)[0].dtype
