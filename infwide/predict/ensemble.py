r"""Infinite ensembles of infinitely wide networks trained by gradient flow on the MSE loss.

:func:`gradient_descent_mse_ensemble` (NT's API). The ensemble outputs at time :math:`t` are
Gaussian; with :math:`K` the NNGP, :math:`\Theta` the NTK, :math:`\Theta + rI = V\Lambda V^\top`,
:math:`x = \lambda^+\eta t/|y|`, :math:`h = (1 - e^{-x})/\lambda` and
:math:`Q_t = \Theta_{xD} V\,\mathrm{diag}(h)\,V^\top` (Lee et al. 2019, arXiv:1902.06720,
Eqs. 14-16):

.. math::
    \mu_t(x) = Q_t\,y, \qquad
    \Sigma^{\rm NTK}_t = K_{xx} + Q_t K Q_t^\top - (Q_t K_{Dx} + \mathrm{h.c.}),

and for the NNGP (``get='nngp'``, :math:`K + rI = U M U^\top`, :math:`h` on :math:`M`)
:math:`\Sigma^{\rm NNGP}_t = K_{xx} - K_{xD}U\,\mathrm{diag}\big((1 - e^{-2x})/\mu\big)\,U^\top K_{Dx}`.

How it is computed. The expensive term is :math:`Q_t K Q_t^\top` for every time. With
:math:`A = \Theta_{xD}V` (once per test set), :math:`W = V^\top R` where :math:`RR^\top = K`
(once per training set, cached) and :math:`B = K_{xD}V`:

.. math::
    Q_t K Q_t^\top = X_t X_t^\top,\ X_t = A\,\mathrm{diag}(h_t)\,W, \qquad
    Q_t K_{Dx} = A\,\mathrm{diag}(h_t)\,B^\top,

at most one ``(m x n) @ (n x n)`` product per time and a symmetric rank-k update, where NT's
contraction costs two such products per time. Much of even that is shared between times
(``_sharing``): the eigen-directions that have converged by a time (weights bitwise equal to
the latest time's) are summed once, and so are those still in their linear start
(:math:`\lambda\eta t/|y|` small), whose weights are a short power series in
:math:`\lambda` with time-dependent coefficients (``_series``; truncated below rounding).
On the benchmark's 20 times this leaves ~40 % of the per-time products. The result is PSD by
construction up to the cross term, and symmetrised.
"""
import collections

import numpy as np

from ..backend import get_xp, to_numpy
from ._factor import FactorSet
from ._inputs import (Gaussian, array_arg, canonical_get, check_output, check_test_kernel,
                      check_train_kernel, out_dtype, pack, parse_t)
from ._layout import Layout, kernel_2d, zip_2d
from ._spectral import (decay, inv_weights, nngp_train_cov_weights, one_minus_decay)
from ._sharing import per_time_sums
from .gp import GPInference

__all__ = ["gradient_descent_mse_ensemble", "GradientDescentMSEEnsemble"]

_WHERE = "gradient_descent_mse_ensemble"
_Kernels = collections.namedtuple("Kernels", ("nngp", "ntk"), defaults=(None, None))


def gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate=1., diag_reg=0.,
                                  diag_reg_absolute_scale=False, trace_axes=(-1,), *,
                                  factor_dtype=None, **kernel_fn_train_train_kwargs):
    r"""Mean and covariance of an infinite ensemble trained by gradient flow (NT's API).

    Args:
      kernel_fn: ``kernel_fn(x1, x2=None, get=None, **kwargs)``, e.g. ``Layer.kernel_fn``;
        called with a tuple ``get`` and read by attribute (``.nngp``, ``.ntk``).
      x_train: training inputs.
      y_train: training targets.
      learning_rate, diag_reg, diag_reg_absolute_scale, trace_axes, factor_dtype: as in
        :func:`~infwide.predict.gradient_descent_mse`.
      **kernel_fn_train_train_kwargs: passed to ``kernel_fn`` for the train-train kernel and,
        unless overridden at prediction time, for the test kernels (NT's rules: tuples of two
        arrays are split between test and train; other values must agree).

    Returns:
      A :class:`GradientDescentMSEEnsemble` predictor, called as
      ``predict_fn(t=None, x_test=None, get=None, compute_cov=False, **kernel_fn_kwargs)``.

    The train-train kernels, their eigendecompositions (finite ``t``) or Cholesky factors
    (``t=None``), and the NNGP-to-NTK-eigenbasis product :math:`W` are each computed once, on
    first need, and cached in the predictor for every later call, time and test set.
    """
    return GradientDescentMSEEnsemble(kernel_fn, x_train, y_train, learning_rate, diag_reg,
                                      diag_reg_absolute_scale, trace_axes, factor_dtype,
                                      **kernel_fn_train_train_kwargs)


class GradientDescentMSEEnsemble:
    """The predictor of :func:`gradient_descent_mse_ensemble` (holds the caches)."""

    def __init__(self, kernel_fn, x_train, y_train, learning_rate=1., diag_reg=0.,
                 diag_reg_absolute_scale=False, trace_axes=(-1,), factor_dtype=None,
                 **kernel_fn_train_train_kwargs):
        if not callable(kernel_fn):
            raise TypeError(f"{_WHERE}: `kernel_fn` must be callable as kernel_fn(x1, x2, get); "
                            f"got {type(kernel_fn).__name__}.")
        y = array_arg(y_train, "y_train", _WHERE)
        if hasattr(x_train, "dtype"):
            array_arg(x_train, "x_train", _WHERE)
        self.kernel_fn, self.x_train, self.y = kernel_fn, x_train, y
        self.layout = Layout(y.shape, trace_axes)
        self.learning_rate = float(learning_rate)
        self.kwargs = dict(kernel_fn_train_train_kwargs)
        self.factors = FactorSet(self.train_kernel, _WHERE, diag_reg, diag_reg_absolute_scale,
                                 factor_dtype)
        self.fdt = self.factors.args[2]
        self._k_dd, self._alpha, self._w = {}, {}, None

    # -- kernels -------------------------------------------------------------------------
    def _kernels(self, x1, x2, names, kwargs, arg):
        res = self.kernel_fn(x1, x2, tuple(names), **kwargs)
        out = {}
        for g in names:
            v = getattr(res, g, None)
            if v is None and len(names) == 1 and hasattr(res, "shape"):
                v = res
            if v is None:
                raise ValueError(f"{_WHERE}: kernel_fn returned no '{g}' for the {arg} kernel.")
            out[g] = array_arg(v, f"{arg} {g}", _WHERE)
        return out

    def train_kernel(self, name):
        """The cached train-train kernel ``name`` (computed on first request)."""
        self.train_kernels((name,))
        return self._k_dd[name]

    def train_kernels(self, names):
        missing = [g for g in names if g not in self._k_dd]
        if missing:
            for g, k in self._kernels(self.x_train, None, missing, self.kwargs,
                                      "train-train").items():
                check_train_kernel(k, self.layout, self.y.shape, f"kernel_fn(x_train).{g}",
                                   _WHERE)
                self._k_dd[g] = k
        return {g: self._k_dd[g] for g in names}

    def _test_kwargs(self, kw_test):
        """NT's merge of train-train and test kwargs into test-train and test-test kwargs."""
        kw_td, kw_tt = dict(self.kwargs), dict(self.kwargs)
        for k, v_tt in kw_test.items():
            if k not in self.kwargs:
                v_td = v_tt
            else:
                v_dd = self.kwargs[k]
                if _is_arrays(v_dd) and _is_arrays(v_tt):
                    v_td = (_first(v_tt), _first(v_dd)) if _is_pair(v_dd) and _is_pair(v_tt) \
                        else v_tt
                elif not _same(v_dd, v_tt):
                    raise ValueError(f"{_WHERE}: keyword argument `{k}` of kernel_fn is {v_dd!r} "
                                     f"for the train-train kernel but {v_tt!r} for the test "
                                     "kernels; they must agree.")
                else:
                    v_td = v_tt
            kw_td[k], kw_tt[k] = v_td, v_tt
        return kw_td, kw_tt

    # -- prediction ----------------------------------------------------------------------
    def __call__(self, t=None, x_test=None, get=None, compute_cov=False, **kernel_fn_kwargs):
        """Ensemble mean (and covariance) at time(s) ``t`` (NT's ``predict_fn``).

        Args:
          t: scalar or array of times (leading output axes ``t.shape``); ``None`` is infinite
            time by a Cholesky solve (:func:`gp_inference`), ``np.inf`` the same through the
            eigendecomposition.
          x_test: test inputs; ``None`` for the (unregularised) training set.
          get: ``'nngp'``, ``'ntk'``, a tuple, or ``None`` for ``('nngp', 'ntk')``.
          compute_cov: also return the covariance (a :class:`Gaussian`).
          **kernel_fn_kwargs: test-time keyword arguments of ``kernel_fn``.

        Returns:
          The mean, a :class:`Gaussian` with ``compute_cov``, or a ``Gaussians`` namedtuple of
          them when ``get`` is a tuple or ``None``.
        """
        return self._predict(t, x_test, get, compute_cov, kernel_fn_kwargs)

    def _predict(self, t, x_test, get, compute_cov, kernel_fn_kwargs):
        names, single = canonical_get(get, ("nngp", "ntk"), _WHERE)
        deps = (("nngp",) if "nngp" in names or ("ntk" in names and compute_cov) else ()) + \
            (("ntk",) if "ntk" in names else ())
        k_dd = self.train_kernels(deps)
        k_td = k_tt = None
        if x_test is not None:
            if hasattr(x_test, "dtype"):
                array_arg(x_test, "x_test", _WHERE)
            kw_td, kw_tt = self._test_kwargs(kernel_fn_kwargs)
            k_td = self._kernels(x_test, self.x_train, deps, kw_td, "test-train")
            rows = {check_test_kernel(v, self.layout, f"kernel_fn(x_test, x_train).{g}", _WHERE)
                    for g, v in k_td.items()}
            if len(rows) > 1:
                raise ValueError(f"{_WHERE}: kernel_fn returned test-train kernels of different "
                                 f"shapes {[tuple(v.shape) for v in k_td.values()]}.")
            if compute_cov:
                k_tt = self._kernels(x_test, None, ("nngp",), kw_tt, "test-test")["nngp"]
                check_test_kernel(k_tt, self.layout, "kernel_fn(x_test, None).nngp", _WHERE,
                                  test_rows=rows.pop())
        t = parse_t(t, _WHERE)
        if t is None:
            gp = GPInference(_Kernels(**k_dd), self.y, trace_axes=self.layout.trace,
                             factors=self.factors, alpha_cache=self._alpha)
            k_test_test = k_tt if x_test is not None else (True if compute_cov else None)
            return gp(names[0] if single else names,
                      None if k_td is None else _Kernels(**k_td), k_test_test)
        # Both factorisations first (each is needed anyway, so the order costs nothing): with
        # OpenBLAS the first large product after an eigh ran at half speed (bench/NOTES.md,
        # step 17, cause not found), which this pays once instead of twice.
        for g in names:
            self.factors[g].eigh()
        out = {g: self._finite(g, t, k_dd, k_td, k_tt, compute_cov) for g in names}
        return pack(names, single, out)

    def _finite(self, g, t, k_dd, k_td, k_tt, compute_cov):
        xp = get_xp(k_dd[g], self.y)
        lam, vec = self.factors[g].eigh()
        tau = xp.asarray(t.reshape(-1) * self.learning_rate, dtype=lam.dtype)
        y2 = self.layout.to_2d(xp, xp.asarray(self.y)).astype(lam.dtype)
        z = vec.T @ y2
        if k_td is None:
            mean, cov = self._train_side(xp, g, lam, vec, z, tau, compute_cov)
            rows = self.layout.train_rows
            dtype = out_dtype(k_dd[g], self.y)
        else:
            mean, cov = self._test_side(xp, g, lam, vec, z, tau, k_td, k_tt, compute_cov)
            rows = tuple(k_td[g].shape[0::2])
            dtype = out_dtype(k_dd[g], self.y, k_td[g], k_tt)
        mean = self.layout.from_2d(xp, mean, t.shape, rows).astype(dtype)
        check_output(xp, mean, f"{g} ensemble mean", _WHERE)
        if cov is None:
            return mean
        cov = zip_2d(xp, 0.5 * (cov + xp.swapaxes(cov, -1, -2)), t.shape, rows, rows)
        cov = cov.astype(dtype)
        check_output(xp, cov, f"{g} ensemble covariance", _WHERE)
        return Gaussian(mean, cov)

    def _train_side(self, xp, g, lam, vec, z, tau, compute_cov):
        """Training-set mean ``V diag(1 - e^{-x}) V^T y`` and NT's train covariances."""
        size, (n, c) = self.y.size, z.shape
        w = one_minus_decay(xp, lam, tau, size)  # (T, n)
        mean = xp.moveaxis((vec @ (w.T[:, :, None] * z[:, None, :]).reshape(n, -1))
                           .reshape(n, -1, c), 0, 1)
        if not compute_cov:
            return mean, None
        if g == "nngp":
            s = xp.sqrt(nngp_train_cov_weights(xp, lam, tau, size))
            cov = xp.stack([_gram(vec * s_t[None, :]) for s_t in s])
        else:
            w_cross = self._cross()
            e = decay(xp, lam, tau, size)
            cov = xp.stack([_gram(vec @ (e_t[:, None] * w_cross)) for e_t in e])
        return mean, cov

    def _test_side(self, xp, g, lam, vec, z, tau, k_td, k_tt, compute_cov):
        """Test-set mean ``Q_t y`` and covariance (module docstring)."""
        factors, size = self.factors[g], self.y.size
        if bool(xp.isinf(tau).any()):
            factors.require_nonsingular("a test prediction at t=inf")
        (n, c), n_t = z.shape, tau.shape[0]
        h = inv_weights(xp, lam, tau, size)  # (T, n)
        hz = (h.T[:, :, None] * z[:, None, :]).reshape(n, -1)  # (n, T*c)
        k2 = xp.asarray(kernel_2d(k_td[g]), dtype=lam.dtype)
        m = k2.shape[0]
        a = k2 @ vec if (compute_cov or m < n_t * c) else None
        mean = (a @ hz if a is not None else k2 @ (vec @ hz)).reshape(m, n_t, c)
        mean = xp.moveaxis(mean, 0, 1)
        if not compute_cov:
            return mean, None
        k_tt2 = xp.asarray(kernel_2d(k_tt), dtype=lam.dtype)
        ref = int(xp.argmax(tau))   # the latest time: its converged directions are shared
        u = to_numpy(tau).astype(np.float64) / size
        cov = xp.empty((n_t, m, m), dtype=a.dtype)
        if g == "nngp":
            s = xp.sqrt(inv_weights(xp, lam, 2 * tau, size))
            for i, (aa,) in per_time_sums(xp, a, s, ref, _gram_block, lam, 2 * u, power=2):
                cov[i] = k_tt2 - aa
            return mean, cov
        b = xp.asarray(kernel_2d(k_td["nngp"]), dtype=lam.dtype) @ vec
        return mean, self._ntk_test_cov(xp, a, b, h, k_tt2, ref, cov, lam, u)

    def _ntk_test_cov(self, xp, a, b, h, k_tt2, ref, cov, lam, u):
        """``K_tt + X_t X_t^T - P_t - P_t^T`` with ``X_t = A h_t W``, ``P_t = A h_t B^T``
        (written into ``cov``)."""
        w_cross, b_t = self._cross(), b.T

        def block(s, lo, hi):
            return s @ w_cross[lo:hi], s @ b_t[lo:hi]

        for i, (x, p) in per_time_sums(xp, a, h, ref, block, lam, u):
            cov[i] = k_tt2 + _gram(x) - p - p.T
        return cov

    def _cross(self):
        """Cached ``W = V_ntk^T R`` with ``R R^T`` the unregularised train NNGP."""
        if self._w is None:
            _, vec = self.factors["ntk"].eigh()
            root, scale = self.factors["nngp"].sqrt_unregularised()
            self._w = vec.T @ root
            if scale is not None:
                self._w *= scale[None, :]
        return self._w


def _gram(x):
    """``x @ x.T`` (NumPy dispatches this to a symmetric rank-k update)."""
    return x @ x.T


def _gram_block(s, lo, hi):
    return (_gram(s),)


def _is_arrays(v):
    if _is_pair(v):
        return all(hasattr(a, "shape") for a in v)
    return hasattr(v, "shape")


def _is_pair(v):
    return isinstance(v, tuple) and len(v) == 2


def _first(v):
    return v[0] if _is_pair(v) else v


def _same(a, b):
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False
