"""Validation at the public boundary of ``infwide.predict`` and the result types."""
import collections
from typing import Any, NamedTuple

import numpy as np

from ..backend import as_array, check_finite, result_dtype, to_numpy
from ._layout import kernel_row_shapes

__all__ = ["Gaussian", "canonical_get", "pack", "parse_t", "array_arg", "kernel_attr",
           "check_train_kernel", "check_test_kernel", "broadcast_arg", "out_dtype",
           "check_output"]


class Gaussian(NamedTuple):
    """A ``(mean, covariance)`` pair (NT's ``predict.Gaussian``).

    ``mean`` has the shape of the outputs (with leading time axes when ``t`` is an array);
    ``covariance`` the shape of the matching kernel (NT's zipped layout, same leading axes).
    """
    mean: Any
    covariance: Any


_GAUSSIANS = {}


def canonical_get(get, allowed, where):
    """``(names, single)``: ``None`` -> both ``('nngp', 'ntk')``; a string -> one name."""
    if get is None:
        return ("nngp", "ntk"), False
    single = isinstance(get, str)
    names = (get,) if single else tuple(get)
    if not names:
        raise ValueError(f"{where}: `get` must not be empty; use e.g. 'ntk' or ('nngp', 'ntk').")
    try:
        names = tuple(g.lower() for g in names)
    except AttributeError as e:
        raise TypeError(f"{where}: `get` must be a string or a tuple of strings; got "
                        f"{get!r}.") from e
    if len(set(names)) < len(names):
        raise ValueError(f"{where}: all entries of `get` must be unique; got {names}.")
    for g in names:
        if g not in allowed:
            raise ValueError(f"{where}: unknown `get` entry {g!r}; expected one of {allowed}, a "
                             "tuple of them, or None.")
    return names, single


def pack(names, single, values):
    """One value when ``get`` was a string, else a ``Gaussians`` namedtuple in ``get``'s order."""
    if single:
        return values[names[0]]
    if names not in _GAUSSIANS:
        _GAUSSIANS[names] = collections.namedtuple("Gaussians", names)
    return _GAUSSIANS[names](*(values[g] for g in names))


def parse_t(t, where):
    """``None`` stays ``None``; anything else becomes a float64 NumPy array (NaN refused)."""
    if t is None:
        return None
    t = np.asarray(to_numpy(t) if not isinstance(t, (int, float)) else t, dtype=np.float64)
    if np.isnan(t).any():
        raise ValueError(f"{where}: `t` contains NaN; expected training times (floats, "
                         "np.inf allowed) or None for the end of training.")
    return t


def array_arg(x, name, where):
    """A finite NumPy/CuPy array (ints become float64), or ``None``."""
    if x is None:
        return None
    x = as_array(x, name)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    elif x.dtype.kind not in "f":
        raise TypeError(f"{where}: `{name}` must hold real numbers; got dtype {x.dtype}.")
    check_finite(x, name, where)
    return x


def kernel_attr(k, name, arg, where):
    """The ``name`` kernel of ``k``: an array is used for every name; a ``Kernel`` or a
    namedtuple gives its attribute."""
    if k is None:
        return None
    if hasattr(k, "shape") and not hasattr(k, "nngp") and not hasattr(k, "ntk"):
        return as_array(k, arg)
    v = getattr(k, name, None)
    if v is None:
        raise ValueError(f"{where}: `{arg}` has no '{name}' kernel; pass an array, or a Kernel "
                         f"or namedtuple whose `{name}` attribute is set.")
    return as_array(v, f"{arg}.{name}")


def _zipped(rows1, rows2):
    return tuple(d for pair in zip(rows1, rows2) for d in pair)


def check_train_kernel(k, layout, y_shape, arg, where):
    """The train-train kernel must be ``zip(rows, rows)`` of ``y_train``'s non-trace axes."""
    expected = _zipped(layout.train_rows, layout.train_rows)
    if tuple(k.shape) != expected:
        raise ValueError(f"{where}: `{arg}` has shape {tuple(k.shape)}, which does not match "
                         f"`y_train` of shape {tuple(y_shape)} with trace_axes={layout.trace}: "
                         f"expected {expected}.")


def check_test_kernel(k, layout, arg, where, test_rows=None):
    """A test-train kernel ``zip(test_rows, train_rows)`` (or test-test, ``zip(test, test)``).

    Returns the test rows.
    """
    if k.ndim != 2 * len(layout.train_rows):
        raise ValueError(f"{where}: `{arg}` has shape {tuple(k.shape)}; expected "
                         f"{2 * len(layout.train_rows)} axes (zipped test and train rows) "
                         f"to match `y_train` of shape {layout.y_shape} with "
                         f"trace_axes={layout.trace}.")
    rows1, rows2 = kernel_row_shapes(k)
    want2 = layout.train_rows if test_rows is None else test_rows
    if rows2 != want2 or (test_rows is not None and rows1 != test_rows):
        want = _zipped(rows1 if test_rows is None else test_rows, want2)
        raise ValueError(f"{where}: `{arg}` has shape {tuple(k.shape)}, which does not match "
                         f"`y_train` of shape {layout.y_shape} with trace_axes={layout.trace}: "
                         f"expected {want}.")
    return rows1


def broadcast_arg(x, shape, name, where):
    """Check that ``x`` broadcasts to ``shape`` (NT broadcasts initial outputs)."""
    try:
        ok = np.broadcast_shapes(tuple(x.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{where}: `{name}` of shape {tuple(x.shape)} does not broadcast to "
                         f"the output shape {tuple(shape)}.")


def out_dtype(*arrays):
    """float32 when every input is float32, else float64 (API.md's dtype rule)."""
    return result_dtype(*[a for a in arrays if a is not None and hasattr(a, "dtype")])


def check_output(xp, x, name, where):
    """Never hand back NaN or Inf silently (only overflow, e.g. at negative times, gets here)."""
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{where}: the {name} overflowed to Inf/NaN (inputs were finite); "
                         "check for negative or huge training times, or scale the kernel.")
