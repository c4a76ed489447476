"""Stable descriptions and fingerprints: what a store remembers about a computation.

``describe(obj)`` turns a kernel function (a ``Layer``, its bound ``kernel_fn``, a
``functools.partial``, a batched kernel function) into a text that depends only on the layer
tree and its hyper-parameters, never on memory addresses, so that two processes building the
same network get the same text, and any change of a hyper-parameter changes it.
``hash_array`` fingerprints input data by its bytes, shape and dtype.
"""
import functools
import hashlib
import math
import types

import numpy as np

__all__ = ["describe", "hash_array", "sha256_text"]

_MAX_DEPTH = 40
_CHUNK = 1 << 24


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_array(x):
    """SHA-256 of an array's dtype, shape and bytes (C order); CuPy arrays are copied to host."""
    if x is None:
        return None
    if not isinstance(x, np.ndarray) and hasattr(x, "get"):
        x = x.get()
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str}|{tuple(x.shape)}|".encode())
    flat = x.reshape(-1).view(np.uint8) if x.size else np.zeros(0, np.uint8)
    for start in range(0, flat.size, _CHUNK):
        h.update(memoryview(flat[start:start + _CHUNK]))
    return h.hexdigest()


def describe(obj):
    """A stable text description of a kernel function or layer tree.

    Walks ``Layer`` attributes recursively (hyper-parameters, sub-layers, the functions and
    ``functools.partial`` objects an activation is built from), naming functions by module and
    qualified name. Objects whose only ``repr`` would show a memory address are described by
    their type and attributes instead.
    """
    return _describe(obj, 0, set())


def _describe(obj, depth, seen):
    if depth > _MAX_DEPTH:
        raise ValueError("describe: the layer tree is nested more than "
                         f"{_MAX_DEPTH} levels deep (a cycle?); cannot fingerprint it.")
    simple = _describe_simple(obj)
    if simple is not None:
        return simple
    if id(obj) in seen:
        return f"<cycle {type(obj).__qualname__}>"
    seen = seen | {id(obj)}
    d = depth + 1
    if isinstance(obj, (list, tuple)):
        inner = ", ".join(_describe(o, d, seen) for o in obj)
        return f"{type(obj).__name__}[{inner}]"
    if isinstance(obj, (set, frozenset)):
        return "{" + ", ".join(sorted(_describe(o, d, seen) for o in obj)) + "}"
    if isinstance(obj, dict):
        items = sorted((str(k), v) for k, v in obj.items())
        return "{" + ", ".join(f"{k}: {_describe(v, d, seen)}" for k, v in items) + "}"
    if isinstance(obj, functools.partial):
        return (f"partial({_describe(obj.func, d, seen)}, args={_describe(obj.args, d, seen)}, "
                f"kw={_describe(obj.keywords, d, seen)})")
    if isinstance(obj, types.MethodType):
        if obj.__func__.__name__ == "kernel_fn":  # a layer's kernel_fn is the layer
            return _describe(obj.__self__, d, seen)
        return f"method {obj.__func__.__qualname__} of {_describe(obj.__self__, d, seen)}"
    if isinstance(obj, types.FunctionType):
        return _describe_function(obj, d, seen)
    return _describe_object(obj, d, seen)


def _describe_simple(obj):
    if obj is None or isinstance(obj, (bool, str, bytes)):
        return repr(obj)
    if isinstance(obj, (int, np.integer)):
        return repr(int(obj))
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return repr(f) if math.isfinite(f) else f"float({f})"
    if isinstance(obj, complex):
        return repr(obj)
    if isinstance(obj, np.dtype):
        return f"dtype({obj.str})"
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__"):
        return f"array({obj.dtype}, {tuple(obj.shape)}, sha256={hash_array(obj)})"
    if isinstance(obj, types.BuiltinFunctionType) or isinstance(obj, np.ufunc):
        mod = getattr(obj, "__module__", None) or "builtins"
        return f"builtin {mod}.{getattr(obj, '__qualname__', obj.__name__)}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    return None


def _code_digest(code):
    """SHA-256 of a code object's bytecode, names and constants (nested code included), so
    that two lambdas defined at the same place but computing different things differ."""
    h = hashlib.sha256(code.co_code)
    h.update(repr((code.co_names, code.co_varnames)).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            c = _code_digest(c)
        elif isinstance(c, frozenset):  # set order depends on the process's hash seed
            c = sorted(repr(e) for e in c)
        h.update(repr(c).encode())
    return h.hexdigest()[:16]


def _describe_function(fn, depth, seen):
    parts = [f"function {fn.__module__}.{fn.__qualname__} code={_code_digest(fn.__code__)}"]
    if fn.__defaults__:
        parts.append(f"defaults={_describe(fn.__defaults__, depth, seen)}")
    if fn.__kwdefaults__:
        parts.append(f"kwdefaults={_describe(fn.__kwdefaults__, depth, seen)}")
    if fn.__closure__:
        cells = []
        for c in fn.__closure__:
            try:
                cells.append(c.cell_contents)
            except ValueError:  # an empty cell
                cells.append(None)
        parts.append(f"closure={_describe(cells, depth, seen)}")
    return "(" + ", ".join(parts) + ")"


def _describe_object(obj, depth, seen):
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    wrapped = getattr(obj, "wrapped_kernel_fn", None)
    if wrapped is not None:  # a batched kernel function computes what it wraps
        return _describe(wrapped, depth, seen)
    attrs = getattr(obj, "__dict__", None)
    if attrs is None and hasattr(cls, "__slots__"):
        attrs = {s: getattr(obj, s) for s in cls.__slots__ if hasattr(obj, s)}
    if attrs:
        return f"{name}({_describe(dict(attrs), depth, seen)})"
    r = repr(obj)
    if " at 0x" in r:
        return f"{name}()"
    return f"{name}:{r}"
