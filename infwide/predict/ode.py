r"""Function-space gradient descent on any loss, with momentum: :func:`gradient_descent` (NT's API).

Linearised training with kernel :math:`\Theta` moves the outputs as (Lee et al. 2019,
arXiv:1902.06720, Eq. 7; NT's ``predict.gradient_descent``), in time :math:`\tau = \eta t`:

.. math::
    \dot f_D = -\Theta_{DD}\,\nabla L(f_D), \qquad \dot f_x = -\Theta_{xD}\,\nabla L(f_D),

and with momentum :math:`\beta` (heavy ball, continuous form, :math:`\tau = \sqrt\eta\,t`,
:math:`m = (\beta - 1)/\sqrt\eta`): :math:`\dot f = q`, :math:`\dot q = -\Theta\nabla L + m q`.

Only the training outputs feed back, so the solver integrates them (with the momentum) and
the running integrals :math:`I = \int \nabla L` (:math:`u = \int e^{m(\tau - s)}\nabla L`,
:math:`v = \int u` with momentum); test outputs follow exactly from one product each:
:math:`f_x = f_x(0) - \Theta_{xD} I`, or :math:`q_x = q_x(0)e^{m\tau} - \Theta_{xD}u`,
:math:`f_x = f_x(0) + q_x(0)\,\mathrm{expm1}(m\tau)/m - \Theta_{xD}v`. The state the ODE
solver (``scipy.integrate.solve_ivp``) carries is therefore independent of the test-set size.
"""
import dataclasses
from typing import Any

import numpy as np

from ..backend import as_array, get_xp, to_numpy
from ._factor import TrainFactors
from ._inputs import (array_arg, broadcast_arg, check_output, check_test_kernel,
                      check_train_kernel, out_dtype, parse_t)
from ._layout import Layout, kernel_2d
from .losses import as_loss

__all__ = ["gradient_descent", "GradientDescent", "ODEState"]

_WHERE = "gradient_descent"


@dataclasses.dataclass
class ODEState:
    """Outputs and auxiliary (momentum) variables of :func:`gradient_descent` (NT's ``ODEState``)."""
    fx_train: Any = None
    fx_test: Any = None
    qx_train: Any = None
    qx_test: Any = None


def gradient_descent(loss, k_train_train, y_train, learning_rate=1., momentum=None,
                     trace_axes=(-1,), *, rtol=1.4e-8, atol=1.4e-8, method="DOP853"):
    r"""Predict function-space gradient descent on any loss by solving its ODE (NT's API).

    Args:
      loss: ``loss(fx, y_train) -> float`` with its gradient in ``fx`` (what NT gets from
        autodiff): :data:`~infwide.predict.cross_entropy`, :data:`~infwide.predict.mse` (or
        their names), ``predict.Loss(fn, grad)``, or a pair ``(fn, grad)``. A plain function
        is differentiated by finite differences, ``2 * y_train.size`` loss calls per ODE step,
        with a :class:`~infwide.losses.SlowGradientWarning` (see :mod:`infwide.losses`).
      k_train_train: train-train kernel (NTK), NT's zipped layout without ``trace_axes``.
      y_train: training targets.
      learning_rate: step size; time is ``learning_rate * t`` (``sqrt(learning_rate) * t``
        with momentum, as in NT).
      momentum: ``None`` for plain gradient descent, else the momentum coefficient.
      trace_axes: output axes the kernel lacks.
      rtol, atol, method: infwide additions, passed to ``scipy.integrate.solve_ivp`` (NT's
        ``odeint`` defaults for the tolerances). ``t=inf`` uses LSODA (stiff-capable).

    Returns:
      A :class:`GradientDescent` predictor, called as
      ``predict_fn(t=None, fx_train_or_state_0=0., fx_test_0=None, k_test_train=None)``.
    """
    return GradientDescent(loss, k_train_train, y_train, learning_rate, momentum, trace_axes,
                           rtol=rtol, atol=atol, method=method)


class GradientDescent:
    """The predictor of :func:`gradient_descent`."""

    def __init__(self, loss, k_train_train, y_train, learning_rate=1., momentum=None,
                 trace_axes=(-1,), *, rtol=1.4e-8, atol=1.4e-8, method="DOP853"):
        self.loss = as_loss(loss, _WHERE)
        k = as_array(k_train_train, "k_train_train")
        y = array_arg(y_train, "y_train", _WHERE)
        self.layout = Layout(y.shape, trace_axes)
        check_train_kernel(k, self.layout, y.shape, "k_train_train", _WHERE)
        self.xp = get_xp(k)
        # a checked (finite, symmetric) float64 copy of the kernel, kept for the RHS
        self.k2 = TrainFactors(k, "`k_train_train`", _WHERE, 0., True, None).working_copy()
        self.dtype = out_dtype(k, y)
        self.y = to_numpy(y).astype(np.float64)
        self.momentum = None if momentum is None else float(momentum)
        lr = float(learning_rate)
        self.time_scale = lr if momentum is None else lr ** 0.5
        self.m = None if momentum is None else (self.momentum - 1.0) / self.time_scale
        self.rtol, self.atol, self.method = float(rtol), float(atol), method

    # -- right-hand side -----------------------------------------------------------------
    def _rhs(self, with_test):
        """``d state / d tau`` for the state ``[f, (q), (I | u, v)]`` (module docstring)."""
        nc, lay, y, m = self.y.size, self.layout, self.y, self.m

        def rhs(_, s):
            g = np.asarray(to_numpy(self.loss.grad(s[:nc].reshape(y.shape), y)),
                           dtype=np.float64)
            kg = to_numpy(self.k2 @ self.xp.asarray(lay.to_2d(np, g)))
            kg = lay.from_2d(np, kg, (), lay.train_rows).reshape(-1)
            g = g.reshape(-1)
            if m is None:
                return np.concatenate([-kg, g] if with_test else [-kg])
            q, u = s[nc:2 * nc], s[2 * nc:3 * nc]
            parts = [q, m * q - kg] + ([g + m * u, u] if with_test else [])
            return np.concatenate(parts)
        return rhs

    # -- prediction ----------------------------------------------------------------------
    def __call__(self, t=None, fx_train_or_state_0=0., fx_test_0=None, k_test_train=None):
        """Outputs (or the full :class:`ODEState`) at time(s) ``t`` (NT's ``predict_fn``).

        ``t``: scalar or array of times >= 0 in any order (``None``/``inf``: trained until the
        outputs stop changing; refused when they do not converge, e.g. cross-entropy on
        separable data). Returns ``fx_train_t``, ``fx_test_t``, both, or an ``ODEState`` when
        one was passed; leading axes ``t.shape``.
        """
        state_in = isinstance(fx_train_or_state_0, ODEState)
        st = self._initial_state(fx_train_or_state_0, fx_test_0, k_test_train)
        t = parse_t(np.inf if t is None else t, _WHERE)
        if (t < 0).any():
            raise ValueError(f"{_WHERE}: training times must be >= 0; got min(t) = {t.min()}.")
        tau = t.reshape(-1) * self.time_scale
        states = self._solve(tau, st)
        res = self._assemble(states, st, tau, t.shape)
        if state_in:
            return res
        fx_train_given = fx_train_or_state_0 is not None
        if fx_test_0 is None:
            return res.fx_train
        return res.fx_test if not fx_train_given else (res.fx_train, res.fx_test)

    def _initial_state(self, fx0, fx_test_0, k_test_train):
        if isinstance(fx0, ODEState):
            if fx_test_0 is not None:
                raise ValueError(f"{_WHERE}: `fx_test_0` is part of the ODEState passed as "
                                 "`fx_train_or_state_0` and must be None.")
            fx0, fx_test_0, q0, q_test0 = fx0.fx_train, fx0.fx_test, fx0.qx_train, fx0.qx_test
        else:
            q0 = q_test0 = None
        if fx0 is None and fx_test_0 is None:
            raise ValueError(f"{_WHERE}: both `fx_train_0` and `fx_test_0` are None, so there "
                             "is nothing to predict.")
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError(f"{_WHERE}: test predictions (`fx_test_0` given) need "
                             "`k_test_train`.")
        if self.m is None and (q0 is not None or q_test0 is not None):
            raise ValueError(f"{_WHERE}: the ODEState has momentum variables but "
                             "`momentum` is None.")
        st = {"k_td2": None, "test_shape": None}
        st["f"] = self._host(fx0, self.y.shape, "fx_train_0")
        st["q"] = None if self.m is None else self._host(q0, self.y.shape, "qx_train")
        if fx_test_0 is not None:
            k_td = array_arg(k_test_train, "k_test_train", _WHERE)
            rows = check_test_kernel(k_td, self.layout, "k_test_train", _WHERE)
            st["rows"], st["test_shape"] = rows, self.layout.fx_shape(rows)
            st["k_td2"] = self.xp.asarray(kernel_2d(k_td), dtype=np.float64)
            st["g"] = self._host(fx_test_0, st["test_shape"], "fx_test_0")
            st["gq"] = None if self.m is None else self._host(q_test0, st["test_shape"],
                                                               "qx_test")
        return st

    def _host(self, a, shape, name):
        if a is None:
            return np.zeros(shape)
        a = to_numpy(array_arg(a, name, _WHERE)).astype(np.float64)
        broadcast_arg(a, shape, name, _WHERE)
        return np.broadcast_to(a, shape).copy()

    def _solve(self, tau, st):
        """ODE states (rows) at the flat times ``tau`` (any order, >= 0, inf allowed)."""
        from scipy.integrate import solve_ivp
        with_test = st["k_td2"] is not None
        nc = self.y.size
        parts = [st["f"].reshape(-1)] + ([] if self.m is None else [st["q"].reshape(-1)])
        n_aux = 0 if not with_test else (1 if self.m is None else 2)
        s0 = np.concatenate(parts + [np.zeros(nc)] * n_aux)
        rhs = self._rhs(with_test)
        finite = np.unique(tau[np.isfinite(tau) & (tau > 0)])
        out = {0.0: s0}
        if finite.size:
            sol = solve_ivp(rhs, (0.0, float(finite[-1])), s0, method=self.method,
                            t_eval=finite, rtol=self.rtol, atol=self.atol)
            if not sol.success:
                raise ValueError(f"{_WHERE}: the ODE solver failed: {sol.message}")
            out.update({float(tk): sol.y[:, i] for i, tk in enumerate(sol.t)})
        if np.isinf(tau).any():
            start = float(finite[-1]) if finite.size else 0.0
            out[np.inf] = self._to_convergence(rhs, start, out[start])
        return np.stack([out[float(tk)] for tk in tau])

    def _to_convergence(self, rhs, t0, s0, max_doublings=40):
        """Integrate (LSODA) over doubling windows until the state stops changing."""
        from scipy.integrate import solve_ivp
        s, t, step = s0, t0, max(1.0, t0)
        for _ in range(max_doublings):
            sol = solve_ivp(rhs, (t, t + step), s, method="LSODA", rtol=self.rtol,
                            atol=self.atol)
            if not sol.success:
                raise ValueError(f"{_WHERE}: the ODE solver failed: {sol.message}")
            new = sol.y[:, -1]
            if np.abs(new - s).max() <= 10 * (self.atol + self.rtol * np.abs(new).max()):
                return new
            s, t, step = new, t + step, 2 * step
        raise ValueError(f"{_WHERE}: the outputs did not converge by time {t:.3g} (they still "
                         "change, e.g. cross-entropy on separable data grows forever); pass "
                         "finite times `t` instead of None/inf.")

    def _assemble(self, states, st, tau, t_shape):
        """ODEState with leading axes ``t_shape`` from the solver states."""
        nc, xp, dt = self.y.size, self.xp, self.dtype
        f = states[:, :nc].reshape(t_shape + self.y.shape)
        q = None if self.m is None else states[:, nc:2 * nc].reshape(t_shape + self.y.shape)
        fx_test = qx_test = None
        if st["k_td2"] is not None:
            fx_test, qx_test = self._test_outputs(states, st, tau, t_shape)
        res = ODEState(*(None if a is None else xp.asarray(a).astype(dt)
                         for a in (f, fx_test, q, qx_test)))
        for name in ("fx_train", "fx_test", "qx_train", "qx_test"):
            if getattr(res, name) is not None:
                check_output(xp, getattr(res, name), name, _WHERE)
        return res

    def _test_outputs(self, states, st, tau, t_shape):
        nc, lay, rows = self.y.size, self.layout, st["rows"]
        aux_at = nc if self.m is None else 3 * nc
        n_t = states.shape[0]
        aux = states[:, aux_at:aux_at + nc].reshape((n_t,) + self.y.shape)
        aux2 = np.stack([lay.to_2d(np, a) for a in aux], axis=1)  # (n, T, c)
        kprod = to_numpy(st["k_td2"] @ self.xp.asarray(aux2.reshape(aux2.shape[0], -1)))
        kprod = lay.from_2d(np, np.moveaxis(kprod.reshape(-1, n_t, lay.n_chan), 1, 0),
                            (n_t,), rows)
        lead = (n_t,) + (1,) * len(st["test_shape"])
        if self.m is None:
            return (st["g"] - kprod).reshape(t_shape + st["test_shape"]), None
        u = states[:, 2 * nc:3 * nc].reshape((n_t,) + self.y.shape)
        u2 = np.stack([lay.to_2d(np, a) for a in u], axis=1)
        ku = to_numpy(st["k_td2"] @ self.xp.asarray(u2.reshape(u2.shape[0], -1)))
        ku = lay.from_2d(np, np.moveaxis(ku.reshape(-1, n_t, lay.n_chan), 1, 0), (n_t,), rows)
        mt = self.m * tau
        e = np.exp(mt).reshape(lead)
        growth = (np.expm1(mt) / self.m if self.m != 0 else tau).reshape(lead)
        qx = st["gq"] * e - ku
        fx = st["g"] + st["gq"] * growth - kprod
        return fx.reshape(t_shape + st["test_shape"]), qx.reshape(t_shape + st["test_shape"])
