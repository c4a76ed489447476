"""The few dense factorisations ``predict`` needs, for NumPy (LAPACK via SciPy) and CuPy (cuSOLVER).

Everything else in ``infwide.predict`` is array code written once against ``xp``; these
functions are the only places where the two namespaces differ. Each takes a *working copy*
it may overwrite (so that a large, possibly memory-mapped, kernel is held in memory once).
"""
import math

import numpy as np
import scipy.linalg

__all__ = ["eigh", "cholesky", "solve_lower", "solve_upper", "eigvalsh", "largest_eigenvalue",
           "numerical_tol", "suggest_diag_reg"]


def eigh(xp, a):
    """Eigenvalues (ascending) and eigenvectors of the symmetric ``a`` (overwritten)."""
    if xp is np:
        # a is symmetric, so its transpose (Fortran-ordered when a is C-ordered) is the same
        # matrix and LAPACK can work in place; 'evd' (divide and conquer) is the fastest driver.
        at = a.T if a.flags.c_contiguous else a
        return scipy.linalg.eigh(at, lower=True, overwrite_a=True, check_finite=False,
                                 driver="evd")
    return xp.linalg.eigh(a, UPLO="L")


def eigvalsh(xp, a):
    """All eigenvalues (ascending) of the symmetric ``a`` (overwritten)."""
    if xp is np:
        at = a.T if a.flags.c_contiguous else a
        return scipy.linalg.eigh(at, lower=True, eigvals_only=True, overwrite_a=True,
                                 check_finite=False, driver="evd")
    return xp.linalg.eigvalsh(a, UPLO="L")


def largest_eigenvalue(xp, a):
    """The largest eigenvalue of the symmetric ``a`` (overwritten), as a Python float."""
    if xp is np:
        n = a.shape[0]
        at = a.T if a.flags.c_contiguous else a
        w = scipy.linalg.eigh(at, lower=True, eigvals_only=True, overwrite_a=True,
                              check_finite=False, subset_by_index=(n - 1, n - 1))
        return float(w[-1])
    return float(xp.linalg.eigvalsh(a, UPLO="L")[-1])


def cholesky(xp, a):
    """Lower Cholesky factor of the symmetric ``a`` (overwritten), or ``None`` if it fails.

    Only the lower triangle of the result is meaningful.
    """
    if xp is np:
        at = a.T if a.flags.c_contiguous else a
        try:
            # upper factor of a.T == transpose of the lower factor of a
            u, _ = scipy.linalg.cho_factor(at, lower=False, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return u.T  # u is the upper factor of at == a, so u.T is the lower factor of a
    try:
        low = xp.linalg.cholesky(a)
    except Exception:  # cupy raises LinAlgError only when its error checking is enabled
        return None
    if not bool(xp.isfinite(xp.diagonal(low)).all()):
        return None
    return low


def solve_lower(xp, low, b):
    """``low^{-1} b`` for a lower-triangular ``low`` (2-D ``b``)."""
    if xp is np:
        return scipy.linalg.solve_triangular(low, b, lower=True, check_finite=False)
    from cupyx.scipy.linalg import solve_triangular
    return solve_triangular(low, b, lower=True)


def solve_upper(xp, low, b):
    """``low^{-T} b`` for a lower-triangular ``low`` (2-D ``b``)."""
    if xp is np:
        return scipy.linalg.solve_triangular(low, b, lower=True, trans="T", check_finite=False)
    from cupyx.scipy.linalg import solve_triangular
    return solve_triangular(low, b, lower=True, trans="T")


def numerical_tol(n, dtype, scale):
    """``n * eps(dtype) * scale``: the rounding level of an ``n x n`` symmetric eigenproblem.

    The same convention as ``numpy.linalg.matrix_rank`` (``S.max() * max(M, N) * eps``).
    """
    return n * float(np.finfo(dtype).eps) * abs(float(scale))


def _round_up(x):
    """``x`` rounded up to one significant digit (2.3e-5 -> 3e-05)."""
    if x <= 0:
        return 0.0
    p = 10.0 ** math.floor(math.log10(x))
    return math.ceil(x / p - 1e-9) * p


def suggest_diag_reg(lam_min, lam_max, reg_abs, mean_diag, n, eps, absolute_scale):
    """``(diag_reg, absolute_scale)`` that lift the smallest eigenvalue clear of rounding.

    ``lam_min``/``lam_max`` are the extreme eigenvalues of the regularised kernel, ``reg_abs``
    the absolute regulariser already added, ``mean_diag`` the mean diagonal of the kernel,
    ``eps`` the relevant machine epsilon. The target is ``lam_min + extra >= 100 n eps |lam|``.
    A relative suggestion is given in relative units, unless the mean diagonal is not
    positive (then no relative value can help, and an absolute one is given).
    """
    target = 100 * n * eps * max(abs(lam_max), abs(lam_min), 1e-300)
    total = reg_abs + max(target - lam_min, 0.0)
    if absolute_scale or mean_diag <= 0:
        return _round_up(total), True
    return _round_up(total / mean_diag), False
