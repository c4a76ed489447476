"""Trace and diagonal of output-pair tensors, with Neural Tangents' layout.

A kernel between two output batches ``f(x1)`` (shape ``(N1, *S)``) and ``f(x2)`` (``(N2, *S)``)
is, before reduction, a tensor with one axis per output axis of each: ``zip(f(x1).shape,
f(x2).shape)``. For each output axis ``d``:

- ``d in trace_axes``: the pair of axes is traced (summed on its diagonal) and dropped;
- ``d in diagonal_axes``: only the diagonal of the pair is kept, as a single axis;
- otherwise both axes are kept, next to each other (``X1, X2``).

The result is divided by the product of the sizes of the traced axes (a mean rather than a
sum), and the surviving axes keep the order of the output axes. (Neural Tangents,
``empirical._trace_and_diagonal`` and ``_dot_general``; Novak et al. 2022, "Fast finite width
neural tangent kernel".)
"""
import string

import numpy as np

__all__ = ["canonical_axes", "OutputAxes"]


def canonical_axes(axes, ndim, name, where):
    """Non-negative sorted output axes; raise a clear error for out-of-range or repeated ones."""
    if axes is None:
        axes = ()
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for a in axes:
        if int(a) != a or not -ndim <= a < ndim:
            raise ValueError(f"{where}: `{name}` must hold axes of the network output (which has "
                             f"{ndim} axes); got {tuple(axes)}.")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{where}: `{name}` repeats an axis: {tuple(axes)}.")
    return tuple(sorted(out))


class OutputAxes:
    """The trace/diagonal plan for outputs with ``ndim`` axes (the batch axis is axis 0)."""

    def __init__(self, ndim, trace_axes, diagonal_axes, where):
        self.ndim = ndim
        self.trace = canonical_axes(trace_axes, ndim, "trace_axes", where)
        self.diag = canonical_axes(diagonal_axes, ndim, "diagonal_axes", where)
        both = set(self.trace) & set(self.diag)
        if both:
            raise ValueError(f"{where}: axes {sorted(both)} are both in `trace_axes` and "
                             "`diagonal_axes`; an output axis can only be one of the two.")
        self.where = where
        # Paired axes appear once in the pair tensor when only their diagonal is needed.
        self.shared = tuple(sorted(self.trace + self.diag))

    def check_shapes(self, shape1, shape2):
        """The two output shapes must agree on traced and diagonal axes."""
        if len(shape1) != self.ndim or len(shape2) != self.ndim:
            raise ValueError(f"{self.where}: f(x1) and f(x2) must have {self.ndim} axes; got "
                             f"{tuple(shape1)} and {tuple(shape2)}.")
        for d in self.shared:
            if shape1[d] != shape2[d]:
                raise ValueError(f"{self.where}: f(x1) and f(x2) must have the same size on "
                                 f"traced or diagonal axis {d}; got {tuple(shape1)} and "
                                 f"{tuple(shape2)}.")

    def trace_size(self, shape):
        return int(np.prod([shape[d] for d in self.trace], dtype=np.int64))

    def _letters(self):
        """Per output axis: (letter for output 1, letter for output 2, letters of the result)."""
        pool = iter(string.ascii_letters)
        plan = []
        for d in range(self.ndim):
            if d in self.trace:
                l = next(pool)
                plan.append((l, l, ""))
            elif d in self.diag:
                l = next(pool)
                plan.append((l, l, l))
            else:
                l1, l2 = next(pool), next(pool)
                plan.append((l1, l2, l1 + l2))
        return plan

    def outer_subscripts(self):
        """einsum subscripts ``out1, out2 -> kernel`` for the NNGP (outer product of outputs)."""
        plan = self._letters()
        s1 = "".join(p[0] for p in plan)
        s2 = "".join(p[1] for p in plan)
        return f"{s1},{s2}->" + "".join(p[2] for p in plan)

    def pair_subscripts(self, shared_rest):
        """einsum subscripts ``pair -> kernel`` for a pair tensor laid out as ``(N1, *S, N2, *S)``
        or, when ``shared_rest``, as ``(N1, N2, *S)`` (the non-batch axes only on their diagonal)."""
        plan = self._letters()
        out = "".join(p[2] for p in plan)
        if not shared_rest:
            return "".join(p[0] for p in plan) + "".join(p[1] for p in plan) + "->" + out
        rest = "".join(p[0] for p in plan[1:])
        return plan[0][0] + plan[0][1] + rest + "->" + out

    def only_diagonal_pairs(self):
        """True when every non-batch output axis is traced or diagonal, so only pairs of
        identical non-batch output indices are ever needed."""
        return all(d in self.shared for d in range(1, self.ndim))

    def kernel_shape_axes(self):
        """For each axis of the result: ``(1 or 2, output axis)``, which batch it comes from."""
        out = []
        for d in range(self.ndim):
            if d in self.trace:
                continue
            if d in self.diag:
                out.append((0, d))
            else:
                out += [(1, d), (2, d)]
        return out
