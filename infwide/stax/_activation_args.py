"""Validation of nonlinearity parameters, and guards around dual activations.

Constructors validate their arguments here, so every error names the layer, the argument,
what was given and what is expected.
"""
import numbers

import numpy as np

from ..backend import get_xp

__all__ = ["real", "degree", "FiniteGuard", "Stabilized"]


def real(layer, name, value):
    """``value`` as a finite float, or a ValueError naming ``layer`` and ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: `{name}` must be a real number; got {value!r}.") from None
    if not np.isfinite(v):
        raise ValueError(f"{layer}: `{name}` must be finite; got {value!r}.")
    return v


def degree(layer, value, name="degree"):
    """``value`` as a non-negative int, or a ValueError naming ``layer``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float, np.floating)) \
            or float(value) != int(value) or int(value) < 0:
        raise ValueError(f"{layer}: `{name}` must be a non-negative integer; got {value!r}.")
    return int(value)


class FiniteGuard:
    """Wrap a dual whose expectations may be infinite (Exp, Gaussian with b > 0, polynomials
    of large variance): before computing, evaluate E[phi(u)^2] and E[phi'(u)^2] on the input
    variances; by Cauchy-Schwarz they bound every entry, so if they are finite all are, and if
    not a ValueError names the layer instead of returning Inf/NaN.
    """

    def __init__(self, name, dual, hint=""):
        self.name, self.dual, self.hint = name, dual, hint

    def __call__(self, k11, k12, k22, want_dot):
        xp = get_xp(k12)
        for v in (k11, k22):
            with np.errstate(all="ignore"):
                nngp, dot = self.dual(v, v, v, want_dot)
            bad = ~xp.isfinite(nngp) if dot is None else ~(xp.isfinite(nngp) & xp.isfinite(dot))
            if bool(bad.any()):
                vmax = float(xp.max(v[bad]))
                raise ValueError(f"{self.name}: the kernel is infinite or undefined for input "
                                 f"variance {vmax:.6g} (E[phi(u)^2] or E[phi'(u)^2] diverges or "
                                 f"overflows {nngp.dtype}).{self.hint}")
        return self.dual(k11, k12, k22, want_dot)


class Stabilized:
    """Neural Tangents' ``do_stabilize`` for positively homogeneous duals (ABReLU): divide the
    covariances by their largest magnitude, apply the dual, multiply back. The result is the same
    up to rounding; it only keeps k11 * k22 from overflowing in very deep networks."""

    def __init__(self, dual):
        self.dual = dual

    def __call__(self, k11, k12, k22, want_dot):
        xp = get_xp(k12)
        scale = max(float(xp.max(xp.abs(k12))) if k12.size else 0.0, 1e-12)
        s = k12.dtype.type(scale)
        nngp, dot = self.dual(k11 / s, k12 / s, k22 / s, want_dot)
        return nngp * s, dot
