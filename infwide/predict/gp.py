r"""NNGP / NTK / NTKGP posteriors at infinite training time: :func:`gp_inference` (NT's API)."""
from ..backend import check_finite, get_xp
from ._factor import FactorSet, as_factor_dtype
from ._inputs import (Gaussian, array_arg, canonical_get, check_output, check_test_kernel,
                      check_train_kernel, kernel_attr, out_dtype, pack)
from ._layout import Layout, kernel_2d, zip_2d

__all__ = ["gp_inference", "GPInference"]

_WHERE = "gp_inference"
_GETS = ("nngp", "ntk", "ntkgp")


def gp_inference(k_train_train, y_train, diag_reg=0., diag_reg_absolute_scale=False,
                 trace_axes=(-1,), *, factor_dtype=None):
    r"""Posterior mean and covariance of the NNGP, NTK or NTKGP on a test set (NT's API).

    With :math:`K` the NNGP, :math:`\Theta` the NTK, :math:`r` the diagonal regulariser and
    the test-train / test-test blocks written :math:`K_{xD}`, :math:`K_{xx}`:

    - ``'nngp'``: exact Bayesian posterior of the infinitely wide network,
      :math:`\mu = K_{xD}(K + rI)^{-1}y`, :math:`\Sigma = K_{xx} - K_{xD}(K + rI)^{-1}K_{Dx}`.
    - ``'ntk'``: infinite ensemble trained to convergence (Lee et al. 2019,
      arXiv:1902.06720, Eq. 16): :math:`\mu = \Theta_{xD}(\Theta + rI)^{-1}y`,
      :math:`\Sigma = K_{xx} + \Theta_{xD}\Theta_r^{-1} K \Theta_r^{-1}\Theta_{Dx}
      - (\Theta_{xD}\Theta_r^{-1}K_{Dx} + \mathrm{h.c.})` with :math:`\Theta_r = \Theta + rI`
      (the NNGP :math:`K` unregularised, as in NT).
    - ``'ntkgp'``: a GP with the NTK as covariance (He et al. 2020, arXiv:2007.05864).

    Args:
      k_train_train: an array (used for every ``get``), or a ``Kernel``/namedtuple with the
        ``nngp`` and/or ``ntk`` the requested ``get`` needs (the NTK covariance needs both).
      y_train: training targets.
      diag_reg, diag_reg_absolute_scale, trace_axes, factor_dtype: as in
        :func:`~infwide.predict.gradient_descent_mse` (``diag_reg`` in relative units is
        multiplied by the mean diagonal entry of the kernel, as NT's code does).

    Returns:
      A :class:`GPInference` predictor, called as
      ``predict_fn(get=None, k_test_train=None, k_test_test=None)``.

    The Cholesky factor of each train kernel is computed once, on first need, and cached in
    the predictor with :math:`(K + rI)^{-1}y`.
    """
    return GPInference(k_train_train, y_train, diag_reg, diag_reg_absolute_scale, trace_axes,
                       factor_dtype)


class GPInference:
    """The predictor of :func:`gp_inference`.

    ``factors`` and ``alpha_cache`` (internal) let :func:`gradient_descent_mse_ensemble`
    share its cached factorisations and solves.
    """

    def __init__(self, k_train_train, y_train, diag_reg=0., diag_reg_absolute_scale=False,
                 trace_axes=(-1,), factor_dtype=None, factors=None, alpha_cache=None):
        y = array_arg(y_train, "y_train", _WHERE)
        self.layout = Layout(y.shape, trace_axes)
        self.k_dd = k_train_train
        self.factors = factors if factors is not None else FactorSet(
            self.train_kernel, _WHERE, diag_reg, diag_reg_absolute_scale, factor_dtype)
        self.factor_dtype = as_factor_dtype(factor_dtype) if factors is None else \
            factors.args[2]
        self.xp = get_xp(self.train_kernel(_first_name(k_train_train)), y)
        self.y = self.xp.asarray(y)
        self._alpha = {} if alpha_cache is None else alpha_cache

    def train_kernel(self, name):
        """The train-train kernel ``name`` (shape-checked; finiteness is checked on use)."""
        k = kernel_attr(self.k_dd, name, "k_train_train", _WHERE)
        check_train_kernel(k, self.layout, self.y_shape, "k_train_train", _WHERE)
        return k

    @property
    def y_shape(self):
        return self.layout.y_shape

    def __call__(self, get=None, k_test_train=None, k_test_test=None):
        """Posterior on the test set (NT's ``predict_fn``).

        Args:
          get: ``'nngp'``, ``'ntk'``, ``'ntkgp'``, a tuple of them, or ``None`` for
            ``('nngp', 'ntk')``.
          k_test_train: test-train kernel(s); ``None`` for the training set, whose outputs are
            ``N(y_train, 0)``.
          k_test_test: test-test kernel(s) to get covariances (NNGP for ``'nngp'`` and
            ``'ntk'``, NTK for ``'ntkgp'``); ``None`` for means only. With
            ``k_test_train=None`` any non-``None`` value asks for the (zero) train covariance.

        Returns:
          A mean, or a :class:`Gaussian` when ``k_test_test`` is given; a ``Gaussians``
          namedtuple of them when ``get`` is a tuple or ``None``.
        """
        names, single = canonical_get(get, _GETS, _WHERE)
        out = {g: self._one(g, k_test_train, k_test_test) for g in names}
        return pack(names, single, out)

    def alpha(self, name):
        """Cached :math:`(K + rI)^{-1} y` as a ``(rows, channels)`` matrix."""
        if name not in self._alpha:
            y2 = self.layout.to_2d(self.xp, self.y).astype(self.factor_dtype)
            self._alpha[name] = self.factors[name].solve(y2)
        return self._alpha[name]

    def _one(self, g, k_test_train, k_test_test):
        xp, lay = self.xp, self.layout
        k = "ntk" if g == "ntkgp" else g
        k_dd = self.factors[k].kernel
        if k_test_train is None:
            dtype = out_dtype(k_dd, self.y)
            mean = self.y.astype(dtype)
            if k_test_test is None:
                return mean
            return Gaussian(mean, xp.zeros(k_dd.shape, dtype))
        k_td = _checked(kernel_attr(k_test_train, k, "k_test_train", _WHERE), "k_test_train")
        rows = check_test_kernel(k_td, lay, "k_test_train", _WHERE)
        fdt = self.factor_dtype
        k_td2 = xp.asarray(kernel_2d(k_td), dtype=fdt)
        dtype = out_dtype(k_dd, self.y, k_td)
        mean = lay.from_2d(xp, k_td2 @ self.alpha(k), (), rows).astype(dtype)
        check_output(xp, mean, "posterior mean", _WHERE)
        if k_test_test is None:
            return mean
        g_init = "ntk" if g == "ntkgp" else "nngp"
        k_tt = _checked(kernel_attr(k_test_test, g_init, "k_test_test", _WHERE), "k_test_test")
        check_test_kernel(k_tt, lay, "k_test_test", _WHERE, test_rows=rows)
        k_tt2 = xp.asarray(kernel_2d(k_tt), dtype=fdt)
        if g == "ntk":
            cov = self._ntk_cov(k_td2, k_test_train, k_tt2)
        else:
            s = self.factors[k].solve_lower(k_td2.T)
            cov = k_tt2 - s.T @ s
        cov = zip_2d(xp, 0.5 * (cov + cov.T), (), rows, rows).astype(out_dtype(k_dd, k_td, k_tt))
        check_output(xp, cov, "posterior covariance", _WHERE)
        return Gaussian(mean, cov)

    def _ntk_cov(self, ntk_td2, k_test_train, k_tt2):
        """:math:`K_{xx} + T^\\top K T - (T^\\top K_{Dx} + \\mathrm{h.c.})`,
        :math:`T = (\\Theta + rI)^{-1}\\Theta_{Dx}`."""
        xp = self.xp
        if not (hasattr(self.k_dd, "nngp") and hasattr(k_test_train, "nngp")):
            raise ValueError(f"{_WHERE}: the NTK posterior covariance on a test set needs both "
                             "the NNGP and the NTK of the train-train and test-train kernels: "
                             "pass Kernel objects or namedtuples with `nngp` and `ntk`.")
        fdt = self.factor_dtype
        nngp_dd = self.train_kernel("nngp")
        check_finite(nngp_dd, "k_train_train.nngp", _WHERE)
        nngp_dd2 = xp.asarray(kernel_2d(nngp_dd), dtype=fdt)
        nngp_td = _checked(kernel_attr(k_test_train, "nngp", "k_test_train", _WHERE),
                           "k_test_train.nngp")
        check_test_kernel(nngp_td, self.layout, "k_test_train", _WHERE)
        nngp_td2 = xp.asarray(kernel_2d(nngp_td), dtype=fdt)
        term = self.factors["ntk"].solve(ntk_td2.T)  # (n, m)
        cross = term.T @ nngp_td2.T
        return k_tt2 + term.T @ (nngp_dd2 @ term) - cross - cross.T


def _checked(k, name):
    check_finite(k, name, _WHERE)
    return k


def _first_name(k):
    if hasattr(k, "shape") and not hasattr(k, "nngp"):
        return "nngp"
    for g in ("nngp", "ntk"):
        if getattr(k, g, None) is not None:
            return g
    raise ValueError(f"{_WHERE}: `k_train_train` must be an array, or a Kernel/namedtuple with "
                     f"`nngp` or `ntk`; got {type(k).__name__}.")
