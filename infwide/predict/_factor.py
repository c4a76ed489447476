"""Cached factorisations of a train-train kernel: the expensive part of every prediction.

A :class:`TrainFactors` holds one train-train kernel (any NT layout, NumPy, CuPy or
``numpy.memmap``) and computes, on first use and then never again:

- the eigendecomposition of :math:`K + rI` (predictions at finite times),
- the Cholesky factor of :math:`K + rI` (predictions at ``t=None``, infinite time),

and, on request (not cached: its user caches what it derives), a square root
:math:`R R^\\top = K` of the *unregularised* kernel for the NTK-ensemble covariance; where
:math:`r` is ``diag_reg`` in absolute units, or ``diag_reg`` times the mean of the diagonal
of the (flattened) kernel when ``diag_reg_absolute_scale=False``. That is what Neural
Tangents' code computes (``diag_reg * trace(K) / n``); its docstring says
``diag_reg * mean(trace(K))``, which it does not do.

Each factorisation starts from one working copy of the kernel in ``factor_dtype`` (float64 by
default, whatever the kernel's dtype), which LAPACK then overwrites in place: a memory-mapped
kernel is read from disk once per factorisation and is never held twice in memory. The
checks (finite, symmetric, positive semi-definite) run on that copy.
"""
import numpy as np

from ..backend import check_finite, get_xp
from ._layout import kernel_2d
from ._linalg import (cholesky, eigh, eigvalsh, numerical_tol, solve_lower, solve_upper,
                      suggest_diag_reg)

__all__ = ["TrainFactors", "FactorSet", "as_factor_dtype"]


def as_factor_dtype(factor_dtype):
    """``None`` -> float64; otherwise float32 or float64 (anything else is refused)."""
    if factor_dtype is None:
        return np.dtype(np.float64)
    try:
        dt = np.dtype(factor_dtype)
    except TypeError as e:
        raise TypeError(f"`factor_dtype` must be float32, float64 or None; got "
                        f"{factor_dtype!r}.") from e
    if dt not in (np.float32, np.float64):
        raise ValueError(f"`factor_dtype` must be float32 or float64 (or None for float64); "
                         f"got {dt}.")
    return dt


def _eps(dtype):
    dtype = np.dtype(dtype)
    return np.finfo(dtype if dtype.kind == "f" else np.float64).eps


def _asymmetry(xp, w, block=512):
    """``max |w - w^T|``, in row strips (no n x n temporary)."""
    n = w.shape[0]
    worst = 0.0
    for i in range(0, n, block):
        d = w[i:i + block, i:] - w[i:, i:i + block].T
        if d.size:
            worst = max(worst, float(xp.abs(d).max()))
    return worst


class TrainFactors:
    """One train-train kernel and its lazily computed, cached factorisations (see module doc)."""

    def __init__(self, kernel, name, where, diag_reg, absolute_scale, factor_dtype):
        self.kernel, self.name, self.where = kernel, name, where
        self.xp = get_xp(kernel)
        self.diag_reg = float(diag_reg)
        self.absolute_scale = bool(absolute_scale)
        self.factor_dtype = as_factor_dtype(factor_dtype)
        k2 = kernel_2d(kernel)
        if k2.shape[0] != k2.shape[1]:
            raise ValueError(f"{where}: {name} must be square once flattened (shape "
                             f"(N, N, ...) in NT's zipped layout); got shape {tuple(kernel.shape)}.")
        self.n = int(k2.shape[0])
        self.eps = max(_eps(kernel.dtype), _eps(self.factor_dtype))
        self.reg_abs = None
        self.mean_diag = None
        self._eig = self._chol = self._lam_only = None

    # -- working copies ------------------------------------------------------------------
    def working_copy(self, regularise=True):
        """A fresh C-ordered ``(n, n)`` copy in ``factor_dtype`` (checked once), plus ``r I``."""
        xp = self.xp
        k2 = kernel_2d(self.kernel)
        fresh = k2 is not self.kernel and not xp.may_share_memory(k2, self.kernel)
        if fresh and k2.dtype == self.factor_dtype and k2.flags.c_contiguous:
            w = k2
        else:
            w = xp.array(k2, dtype=self.factor_dtype, order="C", copy=True)
        if self.reg_abs is None:
            self._check(w)
        if regularise and self.reg_abs != 0:
            w.reshape(-1)[::self.n + 1] += self.reg_abs
        return w

    def _check(self, w):
        xp = self.xp
        check_finite(w, self.name, self.where)
        scale = max(float(w.max()), -float(w.min())) if w.size else 0.0
        asym = _asymmetry(xp, w)
        tol = float(np.sqrt(_eps(self.kernel.dtype))) * scale
        if asym > tol:
            raise ValueError(
                f"{self.where}: {self.name} is not symmetric: max |K - K^T| = {asym:.3g} while "
                f"max |K| = {scale:.3g} (tolerance {tol:.3g}). A train-train kernel must be "
                "symmetric: check that it is kernel_fn(x_train, None) and not a test-train "
                "kernel, and that its axes are in NT's zipped layout (N, N, ...).")
        self.mean_diag = float(xp.trace(w)) / max(self.n, 1)
        self.reg_abs = self.diag_reg * (1.0 if self.absolute_scale else self.mean_diag)

    # -- factorisations ------------------------------------------------------------------
    def eigh(self):
        """Cached ``(eigenvalues, eigenvectors)`` of ``K + r I``; refuses an indefinite kernel."""
        if self._eig is None:
            lam, vec = eigh(self.xp, self.working_copy())
            lam_min, lam_max = float(lam[0]), float(lam[-1])
            if lam_min < -self.tol(lam_min, lam_max):
                raise ValueError(self._message(lam_min, lam_max,
                                               "is not positive semi-definite"))
            self._eig = (lam, vec)
        return self._eig

    def require_nonsingular(self, why):
        """Raise unless the smallest eigenvalue of ``K + r I`` is clear of rounding."""
        lam = self.eigenvalues()
        lam_min, lam_max = float(lam[0]), float(lam[-1])
        if lam_min <= self.tol(lam_min, lam_max, self.factor_dtype):
            raise ValueError(self._message(lam_min, lam_max, f"is singular, and {why} needs "
                                           "its inverse"))

    def cholesky(self):
        """Cached lower Cholesky factor of ``K + r I``; refuses a singular or indefinite one."""
        if self._chol is None:
            w = self.working_copy()
            max_diag = float(self.xp.diagonal(w).max()) if self.n else 0.0
            low = cholesky(self.xp, w)
            if low is None or not self._pivots_ok(low, max_diag):
                lam = self.eigenvalues()
                raise ValueError(self._message(
                    float(lam[0]), float(lam[-1]), "is singular or indefinite, so the linear "
                    "solve for t=None (infinite training time) fails"))
            self._chol = low
        return self._chol

    def _pivots_ok(self, low, max_diag):
        d_min = float(self.xp.diagonal(low).min()) if self.n else 1.0
        return d_min > 0 and d_min ** 2 > numerical_tol(self.n, self.factor_dtype, max_diag)

    def solve(self, b):
        """``(K + r I)^{-1} b`` for a 2-D ``b`` (via the cached Cholesky factor)."""
        low = self.cholesky()
        return solve_upper(self.xp, low, solve_lower(self.xp, low, b))

    def solve_lower(self, b):
        """``L^{-1} b`` with ``L L^T = K + r I``."""
        return solve_lower(self.xp, self.cholesky(), b)

    def eigenvalues(self):
        """Eigenvalues of ``K + r I`` (from the cached eigendecomposition when there is one)."""
        if self._eig is not None:
            return self._eig[0]
        if self._lam_only is None:
            self._lam_only = eigvalsh(self.xp, self.working_copy())
        return self._lam_only

    def sqrt_unregularised(self):
        """``(B, s)`` with ``R = B diag(s)`` and ``R R^T = K`` (no regulariser), negative parts
        clipped; ``s`` is None when ``R = B``.

        From the eigendecomposition when it is cached (``B`` a view of the eigenvectors whose
        eigenvalues ``lam - r`` are positive, ``s`` their square roots), else from a Cholesky
        factor, else (singular kernel) from a new eigendecomposition. Not cached: callers keep
        what they derive from it. ``B`` may share memory with the cached factors: read only.
        """
        return self._sqrt_from_eigh() if self._eig is not None else self._sqrt_from_cholesky()

    def _sqrt_from_eigh(self):
        xp = self.xp
        lam, vec = self.eigh()
        mu = xp.maximum(lam - self.reg_abs, 0)
        # eigenvalues ascend, so the positive ones are a tail: a view, no copy of V
        first = int(xp.count_nonzero(mu <= 0))
        return vec[:, first:], xp.sqrt(mu[first:])

    def _sqrt_from_cholesky(self):
        xp = self.xp
        if self._chol is not None and not self.reg_abs:
            return xp.tril(self._chol), None
        w = self.working_copy(regularise=False)
        max_diag = float(xp.diagonal(w).max()) if self.n else 0.0
        low = cholesky(xp, w)
        if low is None or not self._pivots_ok(low, max_diag):
            return self._sqrt_from_eigh()
        return xp.tril(low), None

    # -- diagnostics ---------------------------------------------------------------------
    def tol(self, lam_min, lam_max, dtype=None):
        """Rounding level of the eigenvalues (``n * eps * |lambda|_max``)."""
        scale = max(abs(lam_min), abs(lam_max))
        if dtype is None:
            return self.n * self.eps * scale
        return numerical_tol(self.n, dtype, scale)

    def _message(self, lam_min, lam_max, what):
        reg, absolute = suggest_diag_reg(lam_min, lam_max, self.reg_abs or 0.0,
                                         self.mean_diag or 0.0, self.n, self.eps,
                                         self.absolute_scale)
        hint = "" if self.factor_dtype == np.float64 else " or factor_dtype=np.float64"
        return (f"{self.where}: {self.name} (with diag_reg={self.diag_reg:g}, "
                f"diag_reg_absolute_scale={self.absolute_scale}) {what}: its smallest eigenvalue "
                f"is {lam_min:.4g} (largest {lam_max:.4g}, rounding level "
                f"{self.tol(lam_min, lam_max):.3g}). Pass diag_reg={reg:g} "
                f"(diag_reg_absolute_scale={absolute}){hint} to fix it.")


class FactorSet:
    """``TrainFactors`` per kernel name (``'nngp'``/``'ntk'``), created on first request.

    ``source(name)`` returns the train-train kernel array of that name.
    """

    def __init__(self, source, where, diag_reg, absolute_scale, factor_dtype):
        self.source, self.where = source, where
        self.args = (diag_reg, absolute_scale, as_factor_dtype(factor_dtype))
        self._by_name = {}

    def __getitem__(self, name):
        if name not in self._by_name:
            label = f"the train-train {name.upper()} kernel"
            self._by_name[name] = TrainFactors(self.source(name), label, self.where, *self.args)
        return self._by_name[name]
