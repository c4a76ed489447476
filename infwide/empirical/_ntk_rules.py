"""Per-layer contributions to the empirical NTK, from forward activations and backward
sensitivities (no full Jacobians where the layer's structure allows it).

The empirical NTK is a sum over parameters, hence over layers:

    Theta(x1, x2)[o1, o2] = sum_layers sum_{p in layer} d f_o1(x1)/dp  d f_o2(x2)/dp.

For a layer with input ``x`` and sensitivity ``delta_o = d f_o / d y`` at its output
(``_tape.backward``), the chain rule gives ``d f_o / dp = (dy/dp)^T delta_o``. For ``Dense``,
``y[s] = w x[s] W + b_s b`` (``s`` runs over spatial positions), so

    sum_W = w^2 sum_{s, t} (x1[s] . x2[t]) (delta1_o1[s] . delta2_o2[t]),
    sum_b = b_s^2 (sum_s delta1_o1[s]) . (sum_t delta2_o2[t]),

which for a fully-connected layer (one position) is ``(w^2 x1.x2 + b_s^2) (delta1 . delta2)``:
the NTK of a wide MLP costs two Gram matrices per layer instead of a Jacobian with one row per
parameter (Novak et al. 2022, "Fast finite width neural tangent kernel", Sec. 3; Jacot et al.
2018). Layers without a rule here contribute through their Jacobian rows, one backward pass of
the layer alone per example and output component.

Pair tensors are ``(N1, R, N2, R)`` for all pairs of output components ``R``, or ``(N1, N2, R)``
when only equal components are paired (``shared``).
"""

from ..backend import get_xp
from ..stax.dense import Dense
from ..params import tree_leaves

__all__ = ["layer_contribution"]


def _take(x, i):
    """Example ``i`` of a batch (or of every array of a list of batches), keeping the axis."""
    if isinstance(x, (list, tuple)):
        return [_take(xi, i) for xi in x]
    return x[i:i + 1]


def _batch_size(x):
    return _batch_size(x[0]) if isinstance(x, (list, tuple)) else x.shape[0]


def _pair(xp, a1, a2, shared):
    """Pair tensor of per-example, per-component rows ``a[i, o, p]``: contraction over ``p``."""
    if shared:
        return xp.einsum("iap,jap->ija", a1, a2)
    return xp.einsum("iap,jbp->iajb", a1, a2)


# -- Dense: Gram matrices of activations and sensitivities -----------------------------------
def _dense_factors(node):
    """Input ``(N, S, n_in)`` and stacked sensitivities ``(R, N, S, n_out)`` of a Dense node."""
    layer, xp = node.layer, get_xp(node.x)
    x = xp.moveaxis(node.x, layer.channel_axis, -1)
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    d = xp.stack([xp.moveaxis(g, layer.channel_axis, -1) for g in node.deltas])
    d = d.reshape(d.shape[0], d.shape[1], -1, d.shape[-1])
    return x, d


def _dense_weight_spatial(xp, x1, d1, x2, d2, shared):
    """``w``-free weight part for several positions, by the cheaper of two exact routes."""
    n1, s, c = x1.shape
    r, n2, dout = d1.shape[0], x2.shape[0], d1.shape[-1]
    pairs = r if shared else r * r
    gram_cost = n1 * n2 * s * s * (c + pairs * dout)
    jac_cost = (n1 + n2) * r * s * c * dout + n1 * n2 * pairs * c * dout
    if jac_cost <= gram_cost:
        j1 = xp.einsum("isc,aisd->iacd", x1, d1).reshape(n1, r, c * dout)
        j2 = xp.einsum("isc,aisd->iacd", x2, d2).reshape(n2, r, c * dout)
        return _pair(xp, j1, j2, shared)
    kx = xp.einsum("isc,jtc->ijst", x1, x2)
    if shared:
        return xp.einsum("ijst,aisd,ajtd->ija", kx, d1, d2, optimize=True)
    return xp.einsum("ijst,aisd,bjtd->iajb", kx, d1, d2, optimize=True)


def dense_contribution(node1, node2, shared, kwargs):
    """Contribution of one ``Dense`` layer (weights and bias) to the pair tensor."""
    layer, xp = node1.layer, get_xp(node1.x)
    x1, d1 = _dense_factors(node1)
    x2, d2 = (x1, d1) if node2 is node1 else _dense_factors(node2)
    w, b = layer._scales(x1.shape[-1])
    has_bias = node1.params[1] is not None
    if x1.shape[1] == 1:
        kx = (x1[:, 0] @ x2[:, 0].T) * (w * w) + (b * b if has_bias else 0.0)
        if shared:
            return kx[:, :, None] * xp.einsum("aid,ajd->ija", d1[:, :, 0], d2[:, :, 0])
        return kx[:, None, :, None] * xp.einsum("aid,bjd->iajb", d1[:, :, 0], d2[:, :, 0])
    out = _dense_weight_spatial(xp, x1, d1, x2, d2, shared) * (w * w)
    if has_bias:
        s1 = xp.moveaxis(d1.sum(axis=2), 0, 1)  # (N, R, n_out)
        s2 = s1 if node2 is node1 else xp.moveaxis(d2.sum(axis=2), 0, 1)
        out = out + _pair(xp, s1, s2, shared) * (b * b)
    return out


# -- any other layer: Jacobian rows from its own backward pass -------------------------------
def jacobian_rows(node, kwargs):
    """``J[i, o, p] = d f_o(x_i) / d p`` for the parameters ``p`` of one leaf layer: a forward
    pass of the layer on each example and one backward pass per output component."""
    layer, params = node.layer, node.params
    leaves = tree_leaves(params)
    xp = get_xp(*leaves)
    n, r = _batch_size(node.x), len(node.deltas)
    size = sum(int(a.size) for a in leaves)
    rows = None
    for i in range(n):
        _, cache = layer.forward(params, _take(node.x, i), **kwargs)
        for o in range(r):
            d_params, _ = layer.backward(params, cache, _take(node.deltas[o], i))
            flat = xp.concatenate([xp.ravel(g) for g in tree_leaves(d_params)])
            if rows is None:
                rows = xp.empty((n, r, size), dtype=flat.dtype)
            rows[i, o] = flat
    return rows


def generic_contribution(node1, node2, shared, kwargs):
    j1 = jacobian_rows(node1, kwargs)
    j2 = j1 if node2 is node1 else jacobian_rows(node2, kwargs)
    return _pair(get_xp(j1), j1, j2, shared)


_RULES = ((Dense, dense_contribution),)


def layer_contribution(node1, node2, shared, kwargs):
    """The pair-tensor contribution of one parametrised leaf layer."""
    for cls, rule in _RULES:
        if type(node1.layer) is cls:
            return rule(node1, node2, shared, kwargs)
    return generic_contribution(node1, node2, shared, kwargs)
