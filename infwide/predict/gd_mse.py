r"""Closed-form gradient descent on the MSE loss: :func:`gradient_descent_mse` (NT's signature)."""

from ..backend import as_array, get_xp
from ._factor import TrainFactors
from ._inputs import (array_arg, broadcast_arg, check_output, check_test_kernel,
                      check_train_kernel, out_dtype, parse_t)
from ._layout import Layout, kernel_2d
from ._spectral import inv_weights, one_minus_decay

__all__ = ["gradient_descent_mse", "GradientDescentMSE"]

_WHERE = "gradient_descent_mse"


def gradient_descent_mse(k_train_train, y_train, learning_rate=1., diag_reg=0.,
                         diag_reg_absolute_scale=False, trace_axes=(-1,), *, factor_dtype=None):
    r"""Predict the outputs of gradient flow on the MSE loss, in closed form (NT's API).

    With :math:`\Theta + rI = V\,\mathrm{diag}(\lambda)\,V^\top` the (regularised) train-train
    kernel and :math:`x = \lambda^+ \eta t / |y|` (:math:`|y|` = ``y_train.size``), training on
    :math:`\frac{1}{2|y|}\|f - y\|^2` moves the outputs as

    .. math::
        f_t(D) = f_0(D) + V\,\mathrm{diag}(e^{-x} - 1)\,V^\top (f_0(D) - y),\qquad
        f_t(x) = f_0(x) - \Theta_{xD}\,V\,\mathrm{diag}\big(\tfrac{1 - e^{-x}}{\lambda}\big)
        \,V^\top (f_0(D) - y)

    (Lee et al. 2019, "Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient
    Descent", arXiv:1902.06720, Eqs. 9-10). ``t=None`` is infinite time, computed by a
    Cholesky solve: :math:`f_\infty(D) = y`, :math:`f_\infty(x) = f_0(x) + \Theta_{xD}
    (\Theta + rI)^{-1} (y - f_0(D))`.

    Args:
      k_train_train: train-train kernel (NTK for gradient descent), NT's zipped layout
        ``zip(rows, rows)`` of ``y_train``'s axes not in ``trace_axes``. NumPy, CuPy or a
        ``numpy.memmap`` (read once per factorisation, never held twice).
      y_train: training targets.
      learning_rate: step size; times count in units of it (``eta * t`` is what matters).
      diag_reg: regulariser ``r`` added to the kernel's diagonal. In relative units
        (``diag_reg_absolute_scale=False``) it is multiplied by the *mean diagonal entry*,
        ``trace(K) / n`` of the flattened kernel: that is what NT's code does (its docstring
        says ``mean(trace(K))``).
      diag_reg_absolute_scale: ``True`` for ``diag_reg`` in absolute units.
      trace_axes: output axes the kernel lacks (read as ``Theta (x) I`` over them).
      factor_dtype: infwide addition. Precision of the factorisations and of all algebra that
        uses them: float64 by default (also for float32 kernels; outputs keep the inputs'
        dtype), ``np.float32`` to stay in single precision (about 2x faster on CPUs).

    Returns:
      A :class:`GradientDescentMSE` predictor, called as
      ``predict_fn(t=None, fx_train_0=0., fx_test_0=None, k_test_train=None)``.

    The eigendecomposition (finite ``t``) and the Cholesky factor (``t=None``) of the train
    kernel are each computed once, on first need, and cached in the predictor for all later
    calls, times and test sets.
    """
    return GradientDescentMSE(k_train_train, y_train, learning_rate, diag_reg,
                              diag_reg_absolute_scale, trace_axes, factor_dtype)


class GradientDescentMSE:
    """The predictor of :func:`gradient_descent_mse` (holds the cached factorisations)."""

    def __init__(self, k_train_train, y_train, learning_rate=1., diag_reg=0.,
                 diag_reg_absolute_scale=False, trace_axes=(-1,), factor_dtype=None):
        k = as_array(k_train_train, "k_train_train")
        y = array_arg(y_train, "y_train", _WHERE)
        self.layout = Layout(y.shape, trace_axes)
        check_train_kernel(k, self.layout, y.shape, "k_train_train", _WHERE)
        self.xp = get_xp(k, y)
        self.k, self.y = k, self.xp.asarray(y)
        self.learning_rate = float(learning_rate)
        self.factors = TrainFactors(k, "`k_train_train`", _WHERE, diag_reg,
                                    diag_reg_absolute_scale, factor_dtype)

    def __call__(self, t=None, fx_train_0=0., fx_test_0=None, k_test_train=None):
        """Outputs at time(s) ``t`` (NT's ``predict_fn``).

        Args:
          t: scalar or array of training times (steps; fractional allowed); outputs get
            ``t.shape`` as leading axes. ``None`` is infinite time by a linear solve;
            ``np.inf`` gives the same through the eigendecomposition.
          fx_train_0: outputs on the training set at ``t = 0`` (broadcast to ``y_train``);
            ``None`` to skip train predictions (then ``0`` is used in the dynamics).
          fx_test_0: outputs on the test set at ``t = 0``; ``None`` to skip test predictions.
          k_test_train: test-train kernel, ``zip(test rows, train rows)``; needed with
            ``fx_test_0``.

        Returns:
          ``fx_train_t``, ``fx_test_t``, or ``(fx_train_t, fx_test_t)`` when both are asked.
        """
        return self._predict(t, fx_train_0, fx_test_0, k_test_train)

    def _predict(self, t, fx_train_0, fx_test_0, k_test_train):
        xp, lay = self.xp, self.layout
        if fx_train_0 is None and fx_test_0 is None:
            raise ValueError(f"{_WHERE}: both `fx_train_0` and `fx_test_0` are None, so there "
                             "is nothing to predict.")
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError(f"{_WHERE}: test predictions (`fx_test_0` given) need "
                             "`k_test_train`.")
        t = parse_t(t, _WHERE)
        f0 = self._initial(fx_train_0, "fx_train_0", self.y.shape)
        k_td = test_rows = g0 = None
        if fx_test_0 is not None:
            k_td = array_arg(k_test_train, "k_test_train", _WHERE)
            test_rows = check_test_kernel(k_td, lay, "k_test_train", _WHERE)
            g0 = self._initial(fx_test_0, "fx_test_0", lay.fx_shape(test_rows))
        dtype = out_dtype(self.k, self.y, k_td, *[a for a in (f0, g0) if a is not None and a.ndim])
        fdt = self.factors.factor_dtype
        rhs = (0 if f0 is None else f0) - self.y
        rhs = lay.to_2d(xp, xp.broadcast_to(rhs, self.y.shape)).astype(fdt)
        k_td2 = None if k_td is None else xp.asarray(kernel_2d(k_td), dtype=fdt)
        if t is None:
            d_train, d_test, lead = None, self._solve_inf(rhs, k_td2), ()
        else:
            d_train, d_test = self._finite(t, rhs, f0 is not None, k_td2)
            lead = t.shape
        out = []
        if f0 is not None:
            fx = self.y if t is None else lay.from_2d(xp, d_train, lead, lay.train_rows) + f0
            out.append(xp.broadcast_to(fx, lead + self.y.shape).astype(dtype))
        if k_td2 is not None:
            out.append((lay.from_2d(xp, d_test, lead, test_rows) + g0).astype(dtype))
        for name, a in zip(("train", "test") if f0 is not None else ("test",), out):
            check_output(xp, a, f"{name} prediction", _WHERE)
        return out[0] if len(out) == 1 else tuple(out)

    def _initial(self, f, name, shape):
        if f is None:
            return None
        f = self.xp.asarray(array_arg(f, name, _WHERE))
        broadcast_arg(f, shape, name, _WHERE)
        return f

    def _solve_inf(self, rhs, k_td2):
        """Test change at t = inf: ``K_td (K + rI)^{-1} (y - f0)`` (``rhs = f0 - y``)."""
        if k_td2 is None:
            return None
        return k_td2 @ self.factors.solve(-rhs)

    def _finite(self, t, rhs, want_train, k_td2):
        """``(T, n, c)`` train changes and ``(T, m, c)`` test changes at the flat times."""
        xp, (n, c) = self.xp, rhs.shape
        lam, vec = self.factors.eigh()
        tau = xp.asarray(t.reshape(-1) * self.learning_rate, dtype=lam.dtype)
        n_t, size = tau.shape[0], self.y.size
        z = vec.T @ rhs
        weights = []
        if want_train:
            weights.append(-one_minus_decay(xp, lam, tau, size))  # expm1(-x)
        if k_td2 is not None:
            if bool(xp.isinf(tau).any()):
                self.factors.require_nonsingular("a test prediction at t=inf")
            weights.append(-inv_weights(xp, lam, tau, size))
        w = xp.concatenate(weights, axis=0)  # (k*T, n)
        prod = vec @ (w.T[:, :, None] * z[:, None, :]).reshape(n, -1)  # (n, k*T*c)
        prod = prod.reshape(n, len(weights), n_t, c)
        d_train = xp.moveaxis(prod[:, 0], 0, 1) if want_train else None
        d_test = None
        if k_td2 is not None:
            d_test = (k_td2 @ prod[:, -1].reshape(n, -1)).reshape(-1, n_t, c)
            d_test = xp.moveaxis(d_test, 0, 1)
        return d_train, d_test
