r"""Functions of a kernel's eigenvalues at training times: the closed form of gradient flow.

Gradient flow on the MSE loss :math:`\frac{1}{2|y|}\|f - y\|^2` with kernel :math:`\Theta`
moves the training outputs as :math:`\dot f = -\frac{\eta}{|y|}\Theta(f - y)`, so with
:math:`\Theta = V\,\mathrm{diag}(\lambda)\,V^\top` and :math:`x_i = \lambda_i^+ \eta t / |y|`
(Jacot et al. 2018, arXiv:1806.07572, Sec. 5; Lee et al. 2019, arXiv:1902.06720, Eq. 9):

- train residual: :math:`f_t - y = V\,\mathrm{diag}(e^{-x})\,V^\top (f_0 - y)`;
- test change: :math:`f_t(x) - f_0(x) = -\Theta_{x D}\,V\,\mathrm{diag}(h)\,V^\top (f_0 - y)`
  with :math:`h_i = (1 - e^{-x_i}) / \lambda_i`.

As in Neural Tangents, eigenvalues are clipped at zero in the exponent
(:math:`\lambda^+ = \max(\lambda, 0)`): negative ones can only come from rounding. A clipped
eigenvalue is a flat direction that never moves: :math:`e^{-x} = 1` (also at :math:`t = \infty`,
where NT computes ``0 * inf = NaN``) and :math:`h = 0` (NT: 0 for negative eigenvalues, NaN for
an exact zero).

Every function takes eigenvalues ``lam`` of shape ``(n,)`` and times ``tau`` (already multiplied
by the learning rate) of shape ``(T,)``, and returns ``(T, n)``.
"""

__all__ = ["exponent", "decay", "one_minus_decay", "inv_weights", "nngp_train_cov_weights"]


def exponent(xp, lam, tau, size):
    """:math:`x = \\lambda^+ \\tau / |y|`, with 0 for clipped eigenvalues even at ``tau = inf``."""
    lam_p = xp.maximum(lam, 0)
    pos = lam_p > 0
    safe = xp.where(pos, lam_p, 0) / size
    with _quiet(xp):
        x = tau[:, None] * safe[None, :]
    return xp.where(pos[None, :], x, 0)


def decay(xp, lam, tau, size):
    """:math:`e^{-x}`."""
    return xp.exp(-exponent(xp, lam, tau, size))


def one_minus_decay(xp, lam, tau, size):
    """:math:`1 - e^{-x}` (``-expm1(-x)``, exact for small ``x``)."""
    return -xp.expm1(-exponent(xp, lam, tau, size))


def inv_weights(xp, lam, tau, size):
    """:math:`h = (1 - e^{-x}) / \\lambda` for :math:`\\lambda > 0`, else 0 (NT's ``-inv_expm1``)."""
    pos = lam > 0
    return xp.where(pos[None, :], one_minus_decay(xp, lam, tau, size)
                    / xp.where(pos, lam, 1)[None, :], 0)


def nngp_train_cov_weights(xp, lam, tau, size):
    """:math:`\\lambda^+ e^{-2x}`: NNGP-ensemble covariance of the training outputs at time t."""
    return xp.maximum(lam, 0)[None, :] * xp.exp(-2 * exponent(xp, lam, tau, size))


class _quiet:
    """Silence NumPy's 'invalid value' warning for ``inf * 0`` (those entries are replaced)."""

    def __init__(self, xp):
        import numpy
        self.np = numpy if xp is numpy else None
        self.ctx = None

    def __enter__(self):
        if self.np is not None:
            self.ctx = self.np.errstate(invalid="ignore", over="ignore")
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)
