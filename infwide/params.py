"""Parameter trees: nested tuples and lists of arrays, with ``None`` for absent parameters
(e.g. a ``Dense`` without bias), exactly as the layers' ``init_fn`` returns them.

Small helpers used by the gradient, training and empirical-kernel code; no framework needed.
"""
import weakref

import numpy as np

from .backend import get_xp

__all__ = ["tree_map", "tree_leaves", "tree_zeros_like", "tree_vdot", "tree_size",
           "tree_unflatten_like", "tree_stack", "is_leaf", "check_params", "reference_params",
           "promote_inputs"]


def is_leaf(t):
    """Arrays (and scalars) are leaves; tuples, lists and ``None`` are structure."""
    return t is not None and not isinstance(t, (tuple, list))


def tree_map(fn, tree, *rest):
    """Apply ``fn`` leafwise over trees of the same structure; ``None`` stays ``None``."""
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, t, *(r[i] for r in rest)) for i, t in enumerate(tree))
    return fn(tree, *rest)


def tree_leaves(tree):
    """The arrays of a tree, depth first, ``None`` skipped."""
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):
        out = []
        for t in tree:
            out.extend(tree_leaves(t))
        return out
    return [tree]


def tree_zeros_like(tree):
    return tree_map(lambda a: a * 0, tree)


def tree_vdot(a, b):
    """Sum over leaves of the elementwise products (the Euclidean inner product of two trees)."""
    return sum(float((x * y).sum()) for x, y in zip(tree_leaves(a), tree_leaves(b)))


def tree_size(tree):
    return int(sum(np.size(a) for a in tree_leaves(tree)))


def tree_unflatten_like(tree, leaves):
    """Rebuild ``tree``'s structure with ``leaves`` (an iterator or list, in ``tree_leaves`` order)."""
    it = iter(leaves)
    return tree_map(lambda _: next(it), tree)


def tree_stack(trees, xp=np):
    """Stack trees of the same structure along a new leading axis."""
    return tree_map(lambda *ls: xp.stack(ls), *trees) if trees else None


def _describe(t):
    if t is None:
        return "None"
    if isinstance(t, (tuple, list)):
        return f"a {type(t).__name__} of {len(t)}"
    return f"an array of shape {tuple(np.shape(t))}"


def _compare(ref, got, path, where):
    if ref is None or isinstance(ref, (tuple, list)):
        if ref is None and got is None:
            return
        if ref is None or got is None or not isinstance(got, (tuple, list)) or len(got) != len(ref):
            raise ValueError(f"{where}: the params do not fit the network: at params{path} "
                             f"expected {_describe(ref)}, got {_describe(got)}. Pass the params "
                             "returned by this network's init_fn for this input shape.")
        for i, (r, g) in enumerate(zip(ref, got)):
            _compare(r, g, f"{path}[{i}]", where)
        return
    shape = getattr(got, "shape", None)
    if shape is None or tuple(shape) != tuple(np.shape(ref)):
        raise ValueError(f"{where}: the params do not fit the network: at params{path} expected "
                         f"{_describe(ref)}, got {_describe(got)}. Pass the params returned by "
                         "this network's init_fn for this input shape.")
    if got.dtype.kind not in "f":
        raise TypeError(f"{where}: params{path} must hold floating-point numbers, got dtype "
                        f"{got.dtype}.")


_REFERENCE = weakref.WeakKeyDictionary()


def reference_params(layer, input_shape):
    """The parameter tree ``layer.init`` gives for ``input_shape``, its leaves replaced by
    zero views of the same shapes (no memory); computed once per layer and shape."""
    key = repr(input_shape)
    per_layer = _REFERENCE.setdefault(layer, {})
    if key not in per_layer:
        ref = layer.init(np.random.default_rng(0), input_shape)[1]
        per_layer[key] = tree_map(lambda a: np.broadcast_to(np.float64(0.0), np.shape(a)), ref)
    return per_layer[key]


def check_params(layer, params, input_shape, where):
    """Raise a clear error unless ``params`` has the structure and shapes that ``layer.init``
    gives for ``input_shape``, and holds only finite numbers."""
    _compare(reference_params(layer, input_shape), params, "", where)
    for i, a in enumerate(tree_leaves(params)):
        xp = get_xp(a)
        if not bool(xp.isfinite(a).all()):
            raise ValueError(f"{where}: the params contain NaN or Inf (parameter array #{i} "
                             f"of shape {tuple(a.shape)}); expected finite values.")


def promote_inputs(x, params):
    """``x`` (an array or a list of arrays) cast up to NumPy's promotion of its dtype with the
    floating-point parameters' dtypes, as NumPy (and NT with x64) compute ``x @ W``: float32
    inputs with float64 parameters compute in float64; float64 inputs with float32 parameters
    stay float64 (the layers cast their weights to the inputs' dtype)."""
    dtypes = {a.dtype for a in tree_leaves(params)
              if getattr(a, "dtype", None) is not None and a.dtype.kind == "f"}
    if isinstance(x, (list, tuple)):
        return [promote_inputs(xi, params) for xi in x]
    if not dtypes:
        return x
    dtype = np.result_type(x.dtype, *dtypes)
    return x if dtype == x.dtype else x.astype(dtype)
