r"""Linearised and Taylor-expanded networks without autodiff: NT's ``linearize``,
``taylor_expand`` and ``empirical_ntk_vp_fn``, from each layer's hand-derived forward-mode
derivative (``Layer.jvp``) and backward pass (``Layer.backward``).

For a network ``f(params, x)`` and a displacement ``dp = new_params - params``:

.. math::
    f_\mathrm{lin}(p + dp, x) = f(p, x) + J_p f(p, x)\, dp, \qquad
    f_d(p + dp, x) = \sum_{k=0}^{d} \frac{1}{k!} \frac{d^k}{dt^k} f(p + t\,dp, x)\Big|_{t=0}

(Lee et al. 2019, arXiv:1902.06720, Eq. 6; NT's ``nt.linearize`` / ``nt.taylor_expand``).
The first-order term is one forward-mode pass (exact). Orders ``k >= 2`` (``taylor_expand``
with ``degree >= 2``) are the Taylor coefficients of the exact directional derivative
``g'(t) = J_p f(p + t dp, x) dp`` interpolated on a few points ``t = j h`` around 0: within
3e-9 (degree 2) and 1e-8 (degree 3) of NT's relative to the outputs on the fixtures of
tests/training/test_linearize_nt.py (float64), less for higher degrees, and meaningless
where a unit of a piecewise-linear nonlinearity (ReLU) sits within ``h`` of its kink (where
the exact higher derivatives are zero almost everywhere and jump). infwide has no
higher-order layer rules (NT gets them from JAX's ``jet``).

``empirical_ntk_vp_fn(f, x1, x2, params)(ct) = J(x1) J(x2)^T ct``: one backward pass at ``x2``
(``ct`` to a parameter tangent) and one forward-mode pass at ``x1``, never the NTK itself.
"""
import numpy as np

from .device import params_to_device, restore, result_kind
from .empirical.kernels import split_rng
from .keywords import APPLY_KEYWORDS, reject_unknown
from .params import check_params, promote_inputs, tree_map
from .stax.layer import Layer, as_layer, input_shape, prepare_inputs

__all__ = ["jvp", "linearize", "taylor_expand", "empirical_ntk_vp_fn", "TaylorModel"]


def _zeros_like(x):
    return [xi * 0 for xi in x] if isinstance(x, list) else x * 0


def jvp(f, params, x, d_params, dx=None, rng=None):
    """Forward pass and its derivative in the direction ``(d_params, dx)`` (forward mode).

    ``f``: a network built with ``infwide.stax`` (the Layer or its ``apply_fn``); ``d_params``:
    a tree shaped like ``params`` (``None`` where a parameter is absent); ``dx``: a tangent
    of the inputs (``None``: zero). Returns ``(f(params, x), J_params d_params + J_x dx)``.
    """
    layer = as_layer(f, "jvp")
    kind = result_kind(x)
    x = prepare_inputs(x)
    check_params(layer, params, input_shape(x), "jvp")
    check_params(layer, d_params, input_shape(x), "jvp (the tangent d_params)")
    params, d_params = params_to_device(params, x), params_to_device(d_params, x)
    x = promote_inputs(promote_inputs(x, params), d_params)
    dx = _zeros_like(x) if dx is None else promote_inputs(prepare_inputs(dx, "dx"), params)
    y, dy = layer.jvp(params, x, d_params, dx, rng=rng)
    return restore(y, kind), restore(dy, kind)


def _fixed_rng(rng):
    """The same randomness for every pass of one call: a Generator becomes one drawn seed (an
    int seed stays, so that ``rng=0`` gives ``apply_fn(params, x, rng=0)``'s Dropout masks)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    return rng


def _displacement(new_params, params):
    return tree_map(lambda a, b: a - b, new_params, params)


class TaylorModel(Layer):
    """``f_d(new_params, x, rng=None)``: the degree-``d`` Taylor polynomial of the network ``f``
    in its parameters around ``params`` (see the module docstring); what ``linearize`` and
    ``taylor_expand`` return.

    It is a ``Layer`` with the network's ``init_fn``, so ``infwide.vjp``, ``grad`` and
    ``value_and_grad`` train it as NT users train ``nt.linearize``'s function with
    ``jax.grad``: for ``degree=1`` the parameter gradient is the network's backward pass at
    ``params`` (the Jacobian is constant). Its backward pass gives no input gradient (``None``:
    that needs second derivatives), so it is a model to train, not a layer to compose; degree
    >= 2 has no gradient, and there is no infinite-width ``kernel_fn``.
    """

    def __init__(self, f, params, degree, where):
        self.layer = as_layer(f, where)
        if isinstance(degree, bool) or int(degree) != degree or degree < 0:
            raise ValueError(f"{where}: `degree` must be a non-negative integer, got {degree!r}.")
        self.params, self.degree, self.where = params, int(degree), where
        self.name = f"{where}({self.layer.name})"

    def __call__(self, new_params, x, **apply_fn_kwargs):
        return self.apply_fn(new_params, x, **apply_fn_kwargs)

    def output_shape(self, input_shape):
        return self.layer.output_shape(input_shape)

    def init(self, rng, input_shape):
        return self.layer.init(rng, input_shape)

    def input_axes(self):
        return self.layer.input_axes()

    def _at(self, new_params, x):
        """``(p0, dp, x)`` checked, on ``x``'s device, ``x`` promoted as NumPy would."""
        shape = input_shape(x)
        check_params(self.layer, self.params, shape, f"{self.where} (params)")
        check_params(self.layer, new_params, shape, f"{self.where} (new_params)")
        p0 = params_to_device(self.params, x)
        dp = params_to_device(_displacement(new_params, self.params), x)
        return p0, dp, promote_inputs(promote_inputs(x, p0), dp)

    def apply(self, params, x, rng=None):
        rng = _fixed_rng(rng)
        layer = self.layer
        p0, dp, x = self._at(params, x)
        if self.degree == 0:
            return layer.apply(p0, x, rng=rng)
        y, dy = layer.jvp(p0, x, dp, _zeros_like(x), rng=rng)
        out = _add(y, dy)
        if self.degree >= 2:
            out = _add(out, _higher_terms(layer, p0, dp, x, self.degree, rng))
        return out

    def forward(self, params, x, rng=None):
        if self.degree >= 2:
            raise NotImplementedError(f"{self.name}: gradients of a Taylor expansion of degree "
                                      ">= 2 need higher derivatives, which infwide's layers do "
                                      "not have; use degree 1 (linearize) or the network.")
        rng = _fixed_rng(rng)
        y = self.apply(params, x, rng=rng)
        if self.degree == 0:
            return y, None
        p0, _, x = self._at(params, x)
        return y, self.layer.forward(p0, x, rng=rng)[1]

    def backward(self, params, cache, ct):
        """``(d_params, None)``: the network's parameter gradient at ``params`` (degree 1)."""
        if self.degree == 0:
            return tree_map(lambda a: a * 0, params), None
        p0 = params_to_device(self.params, ct[0] if isinstance(ct, list) else ct)
        return self.layer.backward(p0, cache, ct)[0], None

    def kernel(self, k, out_full=False):
        raise NotImplementedError(f"{self.name}: no infinite-width kernel; the linearised "
                                  "network's NTK is the network's own kernel_fn.")


def _add(a, b):
    return [u + v for u, v in zip(a, b)] if isinstance(a, list) else a + b


def _higher_terms(layer, p0, dp, x, degree, rng):
    """``sum_{k=2}^{degree} g^(k)(0) / k!`` from the exact ``g'(t)`` on ``n`` symmetric points
    ``t = j h`` (``n`` odd, ``n >= degree``): the interpolating polynomial ``sum_j a_j t^j``
    of ``g'`` gives ``g^(k)(0) / k! = a_{k-1} / k``; ``h = eps^(1/(n+1))`` balances the
    interpolation error ``O(h^(n-k+1))`` against rounding ``eps / h^(k-1)``."""
    n = degree if degree % 2 else degree + 1
    h = np.finfo(np.float64).eps ** (1.0 / (n + 1))
    ts = h * (np.arange(n) - n // 2)
    samples = []
    for t in ts:
        p_t = tree_map(lambda a, d: a + d * t, p0, dp)
        samples.append(layer.jvp(p_t, x, dp, _zeros_like(x), rng=rng)[1])
    coef = np.linalg.inv(np.vander(ts, n, increasing=True))   # a = coef @ g'(ts)
    total = None
    for k in range(2, degree + 1):
        w = coef[k - 1] / k
        term = _weighted(samples, w)
        total = term if total is None else _add(total, term)
    return total


def _weighted(samples, w):
    if isinstance(samples[0], list):
        return [_weighted([s[i] for s in samples], w) for i in range(len(samples[0]))]
    out = samples[0] * samples[0].dtype.type(w[0])
    for s, wj in zip(samples[1:], w[1:]):
        out = out + s * s.dtype.type(wj)
    return out


def linearize(f, params):
    """``f_lin(new_params, x, **apply_fn_kwargs) = f(params, x) + J(params, x) (new_params -
    params)``: the first-order Taylor expansion of a ``stax`` network around ``params`` (NT's
    ``nt.linearize``), exact, from the layers' hand-derived forward-mode rules.

    Example
    -------
    >>> import numpy as np
    >>> import infwide
    >>> from infwide import stax
    >>> init_fn, apply_fn, _ = stax.serial(stax.Dense(64), stax.Relu(), stax.Dense(1))
    >>> _, params = init_fn(0, (3, 2))
    >>> f_lin = infwide.linearize(apply_fn, params)
    >>> x = np.ones((3, 2))
    >>> bool(np.allclose(f_lin(params, x), apply_fn(params, x)))
    True
    """
    return TaylorModel(f, params, 1, "linearize")


def taylor_expand(f, params, degree):
    """``f_d(new_params, x, **apply_fn_kwargs)``: the degree-``degree`` Taylor expansion of a
    ``stax`` network in its parameters around ``params`` (NT's ``nt.taylor_expand``).
    ``degree`` 0 and 1 are exact (``f(params, x)`` and ``linearize``); higher orders are
    interpolated from exact forward-mode derivatives (see :mod:`infwide.taylor`)."""
    return TaylorModel(f, params, degree, "taylor_expand")


class _NtkVp:
    """``ntk_vp_fn(cotangents) -> J(x1) J(x2)^T cotangents`` (see ``empirical_ntk_vp_fn``)."""

    def __init__(self, layer, x1, x2, params, kw1, kw2):
        self.layer, self.x1, self.params, self.kw1 = layer, x1, params, kw1
        y2, self.cache = layer.forward(params, x2, **kw2)
        self.shape2 = [tuple(a.shape) for a in y2] if isinstance(y2, list) else tuple(y2.shape)
        self.kind = result_kind(x1)

    def __call__(self, cotangents):
        got = [tuple(a.shape) for a in cotangents] if isinstance(cotangents, list) \
            else tuple(np.shape(cotangents))
        if got != self.shape2:
            raise ValueError(f"empirical_ntk_vp_fn: the cotangents must have the shape of "
                             f"f(params, x2), {self.shape2}; got {got}.")
        d_params = self.layer.backward(self.params, self.cache, cotangents)[0]
        d_params = tree_map(lambda g, p: g.reshape(p.shape), d_params, self.params)
        _, out = self.layer.jvp(self.params, self.x1, d_params, _zeros_like(self.x1),
                                **self.kw1)
        return restore(out, self.kind)


def empirical_ntk_vp_fn(f, x1, x2, params, **apply_fn_kwargs):
    """NT's ``nt.empirical_ntk_vp_fn``: a function ``ntk_vp_fn(cotangents)`` returning the
    NTK-vector product ``J(x1) J(x2)^T cotangents`` (``J = d f / d params``) without forming
    the NTK: one backward pass of the network at ``x2`` and one forward-mode pass at ``x1``
    per call. ``cotangents`` has the shape of ``f(params, x2)``; the result that of
    ``f(params, x1)``. ``x2=None`` means ``x1``; an ``rng`` keyword is split for ``x1`` and
    ``x2`` as in NT (the same randomness when ``x2`` is None)."""
    reject_unknown("empirical_ntk_vp_fn", apply_fn_kwargs, APPLY_KEYWORDS)
    layer = as_layer(f, "empirical_ntk_vp_fn")
    x1 = prepare_inputs(x1, "x1")
    check_params(layer, params, input_shape(x1), "empirical_ntk_vp_fn")
    x2 = x1 if x2 is None else prepare_inputs(x2, "x2")
    params = params_to_device(params, x1)
    fixed = {k: _fixed_rng(v) for k, v in apply_fn_kwargs.items()}
    kw1, kw2 = split_rng(fixed, x2 is x1)   # int seeds: every call sees the same masks
    return _NtkVp(layer, promote_inputs(x1, params), promote_inputs(x2, params), params,
                  kw1, kw2)
