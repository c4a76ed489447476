"""The posterior of an infinite ensemble of infinitely wide networks trained by gradient
descent on the mean squared error, from precomputed kernels (Lee et al. 2019, "Wide neural
networks of any depth evolve as linear models under gradient descent", eq. 15-16; Neural
Tangents' ``predict.gradient_descent_mse_ensemble`` and ``gp_inference`` conventions).

With ``K`` the train-train kernel of the regime ``get`` (NNGP or NTK) plus ``diag_reg``
(times the mean diagonal of ``K`` unless ``diag_reg_absolute_scale``), ``K = V diag(e) V^T``,
``tau = learning_rate * t / y_train.size`` and ``phi_t(e) = (1 - exp(-e tau)) / e``
(``1 / e`` at ``t = inf``):

    mean(x)  = k(x, X) V phi_t(e) V^T Y
    var(x)   = k_nngp(x, x) - k(x, X) V phi_2t(e) V^T k(X, x)                     get='nngp'
    var(x)   = k_nngp(x, x) + b K_nngp b^T - 2 b k_nngp(X, x),  b = k_ntk(x, X) V phi_t(e) V^T
                                                                                   get='ntk'

where ``K_nngp`` is the unregularised train-train NNGP. Only the diagonal of the predictive
covariance is formed (one variance per input, shared by all outputs).
"""
import numpy as np

__all__ = ["Posterior"]


class Posterior:
    """Eigendecomposition of the regularised train-train kernel, and predictions from it.

    Plain arrays only, so it pickles (the estimators keep one after ``fit``).
    """

    def __init__(self, k_train_train, nngp_train_train, y_train, diag_reg=0.0,
                 diag_reg_absolute_scale=False, learning_rate=1.0):
        k = np.asarray(k_train_train, dtype=np.float64)
        y = np.asarray(y_train, dtype=np.float64)
        n = len(k)
        if not np.isfinite(diag_reg) or diag_reg < 0:
            raise ValueError(f"diag_reg must be a finite number >= 0, got {diag_reg!r}.")
        reg = diag_reg if diag_reg_absolute_scale else diag_reg * np.trace(k) / n
        self.evals, self.evecs = np.linalg.eigh(k + reg * np.eye(n))
        if self.evals[0] <= 0 or not np.all(np.isfinite(self.evals)):
            raise ValueError(f"the train-train kernel (+ diag_reg) is not positive definite "
                             f"(smallest eigenvalue {self.evals[0]:.3g}); increase diag_reg.")
        self.y_eig = self.evecs.T @ y.reshape(n, -1)
        self.nngp_train_train = np.asarray(nngp_train_train, dtype=np.float64)
        self.y_size, self.learning_rate, self.y_shape = y.size, float(learning_rate), y.shape[1:]

    def _phi(self, t, factor=1.0):
        e = self.evals
        if t is None or np.isinf(t):
            return 1.0 / e
        if t < 0:
            raise ValueError(f"t must be >= 0 (or None / inf for the end of training), got {t!r}.")
        tau = factor * self.learning_rate * float(t) / self.y_size
        return -np.expm1(-e * tau) / e

    def mean(self, k_test_train, t=None):
        """Posterior mean at time ``t`` for test inputs with kernel ``k_test_train``."""
        proj = np.asarray(k_test_train, dtype=np.float64) @ self.evecs
        out = proj @ (self._phi(t)[:, None] * self.y_eig)
        return out.reshape((len(out),) + self.y_shape)

    def variance(self, get, k_test_train, nngp_test_train, nngp_test_diag, t=None):
        """Posterior variance of each test output (the diagonal of the covariance)."""
        k_td = np.asarray(k_test_train, dtype=np.float64)
        if get == "nngp":
            proj = k_td @ self.evecs
            var = np.asarray(nngp_test_diag) - np.einsum("ij,j,ij->i", proj, self._phi(t, 2.0), proj)
        else:
            b = (k_td @ self.evecs * self._phi(t)) @ self.evecs.T
            var = (np.asarray(nngp_test_diag) + np.einsum("ij,jk,ik->i", b, self.nngp_train_train, b)
                   - 2 * np.einsum("ij,ij->i", b, np.asarray(nngp_test_train)))
        return np.maximum(var, 0.0)
