"""Combinators: ``serial``, ``parallel``, ``FanOut``, ``FanInSum``, ``FanInProd``,
``FanInConcat``, ``Identity`` and ``repeat``.

Kernel rules (Neural Tangents, Novak et al. 2020; Yang 2019 for the tensor-program view):
- sum of independent branches:  K = sum_i K_i,  Theta = sum_i Theta_i;
- product of branches (valid for independent Gaussian branches, exact for E[prod f_i g_i]):
  K = prod_i K_i,  Theta = sum_i Theta_i prod_{j != i} K_j;
- concatenation along channels of widths c_i:  K = sum_i c_i K_i / sum_i c_i (same for Theta).
"""
import numpy as np

from ..backend import get_xp, result_dtype
from ..guards import check_memory, fused_lower_bound_bytes
from ._plan import chain_needs, match_form, needs_of, requirements
from .layer import BranchPart, Layer, as_generator, linear_jvp

__all__ = ["serial", "parallel", "FanOut", "FanInSum", "FanInProd", "FanInConcat",
           "Identity", "repeat", "Serial", "Parallel", "match_form"]


def _child_rngs(rng, n):
    return [np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=n)]


def _split_rng(rng, n):
    """Per-layer random generators: an ``rng`` (for Dropout) is split into ``n`` independent
    generators, as NT splits its key, so two Dropout layers never share a mask."""
    if rng is None:
        return [None] * n
    return _child_rngs(as_generator(rng), n)


class Serial(Layer):
    """Layers applied one after the other."""

    def __init__(self, layers):
        self.layers = tuple(_check_layer(l, "serial") for l in layers)
        self.name = "serial(" + ", ".join(l.name for l in self.layers) + ")"

    def output_shape(self, input_shape):
        for l in self.layers:
            input_shape = l.output_shape(input_shape)
        return input_shape

    def init(self, rng, input_shape):
        params = []
        for l, r in zip(self.layers, _child_rngs(rng, len(self.layers))):
            input_shape, p = l.init(r, input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def apply(self, params, x, rng=None):
        _check_params(self, params, len(self.layers))
        for l, p, r in zip(self.layers, params, _split_rng(rng, len(self.layers))):
            x = l.apply(p, x, rng=r)
        return x

    def forward(self, params, x, rng=None):
        _check_params(self, params, len(self.layers))
        caches = []
        for l, p, r in zip(self.layers, params, _split_rng(rng, len(self.layers))):
            x, c = l.forward(p, x, rng=r)
            caches.append(c)
        return x, caches

    def backward(self, params, cache, ct):
        grads = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            grads[i], ct = self.layers[i].backward(params[i], cache[i], ct)
        return tuple(grads), ct

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the chain rule, layer after layer."""
        _check_params(self, params, len(self.layers))
        for l, p, dp, r in zip(self.layers, params, d_params,
                               _split_rng(rng, len(self.layers))):
            x, dx = l.jvp(p, x, dp, dx, rng=r)
        return x, dx

    def requirements(self, out_full):
        """Whether each layer's output must carry the full spatial covariance."""
        return requirements(self.layers, out_full)

    def input_needs_full(self, out_full):
        return chain_needs(self.layers)(out_full)

    def flatten(self):
        return [l for sub in self.layers for l in sub.flatten()]

    def kernel_steps(self, k, out_full=False):
        for i, (sub, req) in enumerate(zip(self.layers, self.requirements(out_full))):
            k = sub.kernel(match_form(k, sub.input_needs_full(req), sub), out_full=req)
            yield f"layer {i} ({sub.name})", k

    def input_axes(self):
        for l in self.layers:
            axes = l.input_axes()
            if axes is not None:
                return axes
        return None

    def kernel(self, k, out_full=False):
        # The CPU runner of the plan: fused runs where they apply, else each layer's own
        # kernel in turn (imported here: _fusion reads the Numba engine, loaded on first use).
        from ._fusion import serial_kernel
        return serial_kernel(self, k, out_full)

    def kernel_of_inputs(self, x1, x2, get):
        # A leading run of fusable layers reads the raw inputs (the planner returns None when
        # it does not apply: GPU arrays, fusion off, ...); else the layer-by-layer route.
        from ._fusion import kernel_from_inputs
        out = None
        if isinstance(x1, np.ndarray) and (x2 is None or isinstance(x2, np.ndarray)):
            self._check_memory(x1, x2, get)
            out = kernel_from_inputs(self, x1, x2, get)
        return Layer.kernel_of_inputs(self, x1, x2, get) if out is None else out

    def _check_memory(self, x1, x2, get):
        """The memory guard with the fused route's lower bound (see ``infwide.guards``); the
        unfused route, if taken, checks its own larger bound again."""
        out_shape = self.output_shape(tuple(x1.shape))
        out_full = isinstance(out_shape, tuple) and len(out_shape) > 2
        compute_ntk = get is None or "ntk" in ((get,) if isinstance(get, str) else tuple(get))
        itemsize = result_dtype(x1, x2).itemsize
        need = fused_lower_bound_bytes(
            x1.shape[0], x1.shape[0] if x2 is None else x2.shape[0], tuple(x1.shape),
            out_shape if isinstance(out_shape, tuple) else tuple(x1.shape[:1]),
            self.input_needs_full(out_full), itemsize, compute_ntk, x2 is None)
        check_memory(self, x1, x2, False, itemsize, compute_ntk, need=need)


class Parallel(Layer):
    """Layers applied side by side to a list of inputs, giving a list of outputs."""

    def __init__(self, layers):
        self.layers = tuple(_check_layer(l, "parallel") for l in layers)
        self.name = "parallel(" + ", ".join(l.name for l in self.layers) + ")"

    def _check_n(self, xs, what):
        if not isinstance(xs, (list, tuple)) or len(xs) != len(self.layers):
            got = len(xs) if isinstance(xs, (list, tuple)) else "a single one"
            raise ValueError(f"{self.name}: expected a list of {len(self.layers)} {what}, got {got}.")

    def output_shape(self, input_shape):
        self._check_n(input_shape, "input shapes")
        return [l.output_shape(s) for l, s in zip(self.layers, input_shape)]

    def init(self, rng, input_shape):
        self._check_n(input_shape, "input shapes")
        out = [l.init(r, s) for l, r, s in
               zip(self.layers, _child_rngs(rng, len(self.layers)), input_shape)]
        return [o[0] for o in out], tuple(o[1] for o in out)

    def apply(self, params, x, rng=None):
        self._check_n(x, "inputs")
        rngs = _split_rng(rng, len(self.layers))
        return [l.apply(p, xi, rng=r) for l, p, xi, r in zip(self.layers, params, x, rngs)]

    def forward(self, params, x, rng=None):
        self._check_n(x, "inputs")
        rngs = _split_rng(rng, len(self.layers))
        out = [l.forward(p, xi, rng=r) for l, p, xi, r in zip(self.layers, params, x, rngs)]
        return [o[0] for o in out], [o[1] for o in out]

    def backward(self, params, cache, ct):
        out = [l.backward(p, c, g) for l, p, c, g in zip(self.layers, params, cache, ct)]
        return tuple(o[0] for o in out), [o[1] for o in out]

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: each branch on its own input and tangent."""
        self._check_n(x, "inputs")
        rngs = _split_rng(rng, len(self.layers))
        out = [l.jvp(p, xi, dp, di, rng=r) for l, p, xi, dp, di, r in
               zip(self.layers, params, x, d_params, dx, rngs)]
        return [o[0] for o in out], [o[1] for o in out]

    def input_needs_full(self, out_full):
        needs = needs_of(self.layers[0]) if self.layers else None
        for l in self.layers[1:]:
            needs = needs | needs_of(l)
        return bool(needs is not None and needs(out_full))

    def branch_part(self):
        return BranchPart("parallel", branches=self.layers)

    def kernel(self, k, out_full=False):
        self._check_n(k, "kernels")
        out = []
        for l, ki in zip(self.layers, k):
            ki = match_form(ki, l.input_needs_full(out_full), l)
            out.append(l.kernel(ki, out_full=out_full))
        return out


class FanOut(Layer):
    """Copy one input into ``num`` identical branches."""

    def __init__(self, num):
        if int(num) != num or num < 1:
            raise ValueError(f"FanOut: `num` must be a positive integer, got {num!r}.")
        self.num = int(num)
        self.name = f"FanOut({self.num})"

    def output_shape(self, input_shape):
        return [input_shape] * self.num

    def apply(self, params, x, rng=None):
        return [x] * self.num

    def forward(self, params, x, rng=None):
        return [x] * self.num, None

    def backward(self, params, cache, ct):
        return (), sum(ct[1:], ct[0])

    def jvp(self, params, x, d_params, dx, rng=None):
        return [x] * self.num, [dx] * self.num

    def kernel(self, k, out_full=False):
        return [k] * self.num

    def branch_part(self):
        return BranchPart("fan_out", num=self.num)


class _FanIn(Layer):
    """Base of the fan-in layers: they take a list and return one output."""

    def _check_list(self, xs, what):
        if not isinstance(xs, (list, tuple)) or len(xs) < 1:
            raise ValueError(f"{self.name}: expected a list of {what} from a FanOut or parallel, "
                             f"got {type(xs).__name__}.")


def _require_gaussian(layer, ks):
    """Sums and concatenations of branches are only kernels of their parts when every branch
    is a mean-zero Gaussian (an affine layer last): otherwise the cross terms E[a] E[b] of
    dependent or non-centred branches are unknown (NT refuses the same case)."""
    if len(ks) > 1 and not all(k.is_gaussian for k in ks):
        raise ValueError(f"{layer.name}: every branch must end in a Gaussian layer (Dense, Conv, "
                         "a pooling or Identity of one) for the infinite-width kernel; got "
                         f"branches with is_gaussian={[bool(k.is_gaussian) for k in ks]}. Put "
                         "the nonlinearity before the FanOut or add an affine layer to each "
                         "branch.")


class FanInSum(_FanIn):
    """Sum of branches (residual connections)."""

    name = "FanInSum"

    def branch_part(self):
        return BranchPart("fan_in", combine="sum")

    def output_shape(self, input_shape):
        self._check_list(input_shape, "input shapes")
        if any(tuple(s[1:]) != tuple(input_shape[0][1:]) for s in input_shape):
            raise ValueError(f"FanInSum: all branches must have the same shape (apart from the "
                             f"batch axis); got {[tuple(s) for s in input_shape]}.")
        return input_shape[0]

    def apply(self, params, x, rng=None):
        self._check_list(x, "inputs")
        self.output_shape([tuple(xi.shape) for xi in x])   # no silent broadcasting
        return sum(x[1:], x[0])

    def forward(self, params, x, rng=None):
        return self.apply(params, x), len(x)

    def backward(self, params, cache, ct):
        return (), [ct] * cache

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the sum of the tangents."""
        return linear_jvp(self, params, x, d_params, dx)

    def kernel(self, k, out_full=False):
        self._check_list(k, "kernels")
        self.output_shape([ki.shape1 for ki in k])
        _require_gaussian(self, k)
        add = lambda ms: None if any(m is None for m in ms) else sum(ms[1:], ms[0])
        return k[0].replace(nngp=add([ki.nngp for ki in k]), ntk=add([ki.ntk for ki in k]),
                            cov1=add([ki.cov1 for ki in k]), cov2=add([ki.cov2 for ki in k]),
                            is_gaussian=all(ki.is_gaussian for ki in k))


class FanInProd(_FanIn):
    """Elementwise product of branches."""

    name = "FanInProd"

    def branch_part(self):
        return BranchPart("fan_in", combine="prod")

    def output_shape(self, input_shape):
        return FanInSum.output_shape(self, input_shape)

    def apply(self, params, x, rng=None):
        self._check_list(x, "inputs")
        out = x[0]
        for xi in x[1:]:
            out = out * xi
        return out

    def forward(self, params, x, rng=None):
        return self.apply(params, x), x

    def backward(self, params, cache, ct):
        grads = []
        for i in range(len(cache)):
            g = ct
            for j, xj in enumerate(cache):
                if j != i:
                    g = g * xj
            grads.append(g)
        return (), grads

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode, the product rule: ``dy = sum_i dx_i prod_{j != i} x_j``."""
        dy = None
        for i, di in enumerate(dx):
            term = di
            for j, xj in enumerate(x):
                if j != i:
                    term = term * xj
            dy = term if dy is None else dy + term
        return self.apply(params, x), dy

    def kernel(self, k, out_full=False):
        self._check_list(k, "kernels")
        self.output_shape([ki.shape1 for ki in k])
        nngp, ntk = _prod_with_ntk([ki.nngp for ki in k], [ki.ntk for ki in k])
        cov1, _ = _prod_with_ntk([ki.cov1 for ki in k], [None])
        cov2 = None if k[0].cov2 is None else _prod_with_ntk([ki.cov2 for ki in k], [None])[0]
        return k[0].replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2,
                            is_gaussian=len(k) == 1 and k[0].is_gaussian)


def _prod_with_ntk(nngps, ntks):
    nngp = nngps[0]
    for m in nngps[1:]:
        nngp = nngp * m
    if any(t is None for t in ntks):
        return nngp, None
    prod, ntk = 1.0, 0.0
    for m, t in zip(nngps, ntks):
        ntk = ntk * m + prod * t
        prod = prod * m
    return nngp, ntk


class FanInConcat(_FanIn):
    """Concatenation of branches along ``axis`` (the channel axis by default)."""

    def __init__(self, axis=-1):
        self.axis = int(axis)
        self.name = f"FanInConcat(axis={self.axis})"

    def branch_part(self):
        return BranchPart("fan_in", combine="concat", axis=self.axis)

    def output_shape(self, input_shape):
        self._check_list(input_shape, "input shapes")
        nd = len(input_shape[0])
        ax = self.axis % nd
        for s in input_shape:
            if len(s) != nd or any(a != b for i, (a, b) in enumerate(zip(s, input_shape[0]))
                                   if i not in (0, ax)):
                raise ValueError(f"{self.name}: branches must agree on every axis except {self.axis}; "
                                 f"got {[tuple(s) for s in input_shape]}.")
        out = list(input_shape[0])
        out[ax] = sum(s[ax] for s in input_shape)
        return tuple(out)

    def apply(self, params, x, rng=None):
        self._check_list(x, "inputs")
        return get_xp(x[0]).concatenate(x, axis=self.axis)

    def forward(self, params, x, rng=None):
        return self.apply(params, x), [xi.shape[self.axis] for xi in x]

    def backward(self, params, cache, ct):
        xp = get_xp(ct)
        return (), xp.split(ct, np.cumsum(cache)[:-1].tolist(), axis=self.axis)

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the concatenation of the tangents."""
        return linear_jvp(self, params, x, d_params, dx)

    def kernel(self, k, out_full=False):
        self._check_list(k, "kernels")
        nd = len(k[0].shape1)
        if self.axis % nd != nd - 1:
            raise ValueError(f"{self.name}: the infinite-width kernel is only defined for "
                             "concatenation along the channel axis (axis=-1).")
        shape1 = self.output_shape([ki.shape1 for ki in k])
        _require_gaussian(self, k)
        widths = [ki.shape1[-1] for ki in k]
        total = float(sum(widths))
        mix = lambda ms: None if any(m is None for m in ms) else \
            sum(w * m for w, m in zip(widths[1:], ms[1:])) / total + widths[0] * ms[0] / total
        shape2 = k[0].shape2[:-1] + (shape1[-1],)
        return k[0].replace(nngp=mix([ki.nngp for ki in k]), ntk=mix([ki.ntk for ki in k]),
                            cov1=mix([ki.cov1 for ki in k]), cov2=mix([ki.cov2 for ki in k]),
                            shape1=shape1, shape2=shape2,
                            is_gaussian=all(ki.is_gaussian for ki in k))


class Identity(Layer):
    """The identity layer."""

    name = "Identity"

    def apply(self, params, x, rng=None):
        return x

    def backward(self, params, cache, ct):
        return (), ct

    def jvp(self, params, x, d_params, dx, rng=None):
        return x, dx

    def kernel(self, k, out_full=False):
        return k

    def flatten(self):
        return []


class Repeat(Layer):
    """``layer`` applied ``n`` times with the same parameters (as NT's ``repeat``)."""

    def __init__(self, layer, n):
        self.layer = _check_layer(layer, "repeat")
        if int(n) != n or n < 0:
            raise ValueError(f"repeat: `n` must be a non-negative integer, got {n!r}.")
        self.n = int(n)
        self.name = f"repeat({layer.name}, {self.n})"

    def output_shape(self, input_shape):
        out = self.layer.output_shape(input_shape)
        if self.n and tuple(out[1:]) != tuple(input_shape[1:]):
            raise ValueError(f"{self.name}: the layer changes the shape {tuple(input_shape)} -> "
                             f"{tuple(out)}; use serial(*[layer] * n) instead.")
        return input_shape

    def init(self, rng, input_shape):
        self.output_shape(input_shape)
        _, p = self.layer.init(rng, input_shape)
        return input_shape, p

    def apply(self, params, x, rng=None):
        for _ in range(self.n):
            x = self.layer.apply(params, x, rng=rng)
        return x

    def forward(self, params, x, rng=None):
        caches = []
        for _ in range(self.n):
            x, c = self.layer.forward(params, x, rng=rng)
            caches.append(c)
        return x, caches

    def backward(self, params, cache, ct):
        total = None
        for c in reversed(cache):
            g, ct = self.layer.backward(params, c, ct)
            total = g if total is None else _tree_add(total, g)
        if total is None:  # n == 0: the output does not depend on the parameters
            total = _tree_scale(params, 0.0)
        return total, ct

    def jvp(self, params, x, d_params, dx, rng=None):
        """Forward mode: the chain rule through the ``n`` applications (shared parameters)."""
        for _ in range(self.n):
            x, dx = self.layer.jvp(params, x, d_params, dx, rng=rng)
        return x, dx

    def input_needs_full(self, out_full):
        return chain_needs([self.layer] * self.n)(out_full)

    def input_axes(self):
        return self.layer.input_axes()

    def flatten(self):
        return [l for _ in range(self.n) for l in self.layer.flatten()]

    def kernel(self, k, out_full=False):
        for req in requirements([self.layer] * self.n, out_full):
            k = match_form(k, self.layer.input_needs_full(req), self.layer)
            k = self.layer.kernel(k, out_full=req)
        return k


def _tree_add(a, b):
    if a is None:
        return None
    if isinstance(a, (tuple, list)):
        return type(a)(_tree_add(x, y) for x, y in zip(a, b))
    return a + b


def _tree_scale(a, c):
    if a is None:
        return None
    if isinstance(a, (tuple, list)):
        return type(a)(_tree_scale(x, c) for x in a)
    return a * c


def _check_layer(l, where):
    if isinstance(l, Layer):
        return l
    raise TypeError(f"{where}: expected infwide layers (from infwide.stax), got "
                    f"{type(l).__name__}. Layers from other libraries cannot be mixed in.")


def _check_params(layer, params, n):
    if not isinstance(params, (tuple, list)) or len(params) != n:
        got = len(params) if isinstance(params, (tuple, list)) else type(params).__name__
        raise ValueError(f"{layer.name}: expected params for {n} layers (as returned by its "
                         f"init_fn), got {got}.")


def serial(*layers):
    """Compose layers one after the other."""
    return Serial(layers)


def parallel(*layers):
    """Apply layers side by side to a list of inputs."""
    return Parallel(layers)


def repeat(layer, n):
    """Compose ``layer`` with itself ``n`` times, sharing parameters (as NT)."""
    return Repeat(layer, n)
