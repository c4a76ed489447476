"""Elementwise nonlinearities: one generic layer, wired to the dual activations of
``kernels.activations``.

For a nonlinearity ``phi`` applied to a centred Gaussian pre-activation with covariance
``[[k11, k12], [k12, k22]]`` (Cho & Saul 2009; Lee et al. 2018; Jacot et al. 2018):

    K'     = E[phi(u) phi(v)]
    Theta' = Theta * E[phi'(u) phi'(v)]

The layer only gathers the variances each entry needs (``kernels.forms``) and calls the
activation's ``dual(k11, k12, k22, want_dot)``; the formulas live in ``kernels.activations``.
"""
from ..kernels.forms import self_variances, spatial_variances
from ..backend import get_xp
from .layer import Layer

__all__ = ["Elementwise"]


class Elementwise(Layer):
    """A nonlinearity layer.

    Parameters
    ----------
    name : str
        Shown in errors, e.g. ``"Relu"``.
    fn, dfn : callables ``(xp, x) -> array``
        The nonlinearity and its derivative, for the finite network and its backward pass.
    dual : callable ``(k11, k12, k22, want_dot) -> (k12_out, dot or None)``
        The closed-form (or quadrature) dual activation; ``k11``/``k22`` broadcast to ``k12``.
    op : ``kernels.ops.Dual`` or None
        The same dual as a typed operation for the fused engines (e.g.
        ``Dual("abrelu", (a, b))``); None keeps the layer on its own ``kernel`` path.
    """

    def __init__(self, name, fn, dfn, dual, op=None):
        self.name, self.fn, self.dfn, self.dual, self._op = name, fn, dfn, dual, op

    def fused_op(self):
        """This nonlinearity as a ``kernels.ops.Dual``, or None."""
        return self._op

    def apply(self, params, x, rng=None):
        return self.fn(get_xp(x), x)

    def forward(self, params, x, rng=None):
        return self.fn(get_xp(x), x), x

    def backward(self, params, cache, ct):
        return (), ct * self.dfn(get_xp(cache), cache)

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: ``dy = phi'(x) dx``."""
        xp = get_xp(x)
        return self.fn(xp, x), self.dfn(xp, x) * dx

    def kernel(self, k, out_full=False):
        if not k.is_gaussian:
            raise ValueError(f"{self.name}: the closed-form kernel needs a Gaussian input, i.e. a "
                             "Dense or Conv layer (a random affine map) right before the "
                             "nonlinearity; got the output of a layer that is not Gaussian "
                             "(raw inputs, another nonlinearity, a product or a normalisation).")
        xp = get_xp(k.nngp)
        full = not k.diagonal_spatial
        v1 = spatial_variances(xp, k.cov1, full, 1)
        v2 = spatial_variances(xp, k.cov2_or_cov1(), full, 2)
        nngp, dot = self.dual(v1, k.nngp, v2, k.ntk is not None)
        ntk = None if k.ntk is None else k.ntk * dot
        cov1 = self._self(xp, k.cov1, full)
        cov2 = None if k.cov2 is None else self._self(xp, k.cov2, full)
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=False)

    def _self(self, xp, cov, full):
        left, right = self_variances(xp, cov, full)
        return self.dual(left, cov, right, False)[0]
