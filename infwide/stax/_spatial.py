"""Validation and layout helpers shared by the spatial layers (conv, pooling, normalisation).

Layout conventions follow Neural Tangents and ``lax``: ``dimension_numbers = (lhs, rhs, out)``
strings such as ``('NHWC', 'HWIO', 'NHWC')``; ``filter_shape`` and ``strides`` follow the
order of the spatial letters of ``rhs``. The default for ``n`` spatial dimensions is NT's
``('N' + sp + 'C', sp + 'IO', 'N' + sp + 'C')``. Kernels keep the canonical layout (batch axes
first, spatial axes in the order of ``lhs``, no channel axis).
"""
import string

from ..kernels.conv import PADDINGS

__all__ = ["parse_padding", "int_tuple", "default_dimension_numbers", "ConvSpec",
           "permute_kernel_spatial", "spatial_axes_of"]


def parse_padding(padding, layer):
    """'VALID', 'SAME' or 'CIRCULAR' (case-insensitive), else a ValueError naming ``layer``."""
    p = str(getattr(padding, "name", padding)).upper()
    if p not in PADDINGS:
        raise ValueError(f"{layer}: unknown `padding` {padding!r}; expected one of {PADDINGS}.")
    return p


def int_tuple(value, n, what, layer, minimum=1):
    """A tuple of ``n`` integers >= ``minimum`` (``value`` a sequence), validated."""
    try:
        t = tuple(int(v) for v in value)
        ok = len(t) == n and all(int(v) == v for v in value) and min(t, default=minimum) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{layer}: `{what}` must be a sequence of {n} integers >= {minimum}; "
                         f"got {value!r}.")
    return t


def default_dimension_numbers(n):
    sp = "".join(c for c in string.ascii_uppercase if c not in "NCIO")[:n]
    return ("N" + sp + "C", sp + "IO", "N" + sp + "C")


def _check_spec(spec, letters, name, layer):
    if not isinstance(spec, str) or sorted(spec) != sorted(set(spec)) or \
            any(c not in spec for c in letters):
        raise ValueError(f"{layer}: `dimension_numbers` {name} spec must name each axis once and "
                         f"contain {letters!r}; got {spec!r}.")


class ConvSpec:
    """Parsed ``dimension_numbers`` of an n-d convolution (or pooling) layer.

    Attributes: ``lhs``, ``rhs``, ``out`` strings; ``spatial`` the lhs spatial letters;
    ``filter_perm`` maps lhs spatial order to rhs spatial order; ``out_perm`` maps the kernel's
    (lhs-ordered) spatial axes to the out spec's order.
    """

    def __init__(self, dimension_numbers, n, layer):
        if dimension_numbers is None:
            dimension_numbers = default_dimension_numbers(n)
        if not isinstance(dimension_numbers, (tuple, list)) or len(dimension_numbers) != 3:
            raise ValueError(f"{layer}: `dimension_numbers` must be a triple of strings such as "
                             f"('NHWC', 'HWIO', 'NHWC'); got {dimension_numbers!r}.")
        lhs, rhs, out = (str(s) for s in dimension_numbers)
        _check_spec(lhs, "NC", "lhs", layer)
        _check_spec(rhs, "IO", "rhs", layer)
        _check_spec(out, "NC", "out", layer)
        self.spatial = tuple(c for c in lhs if c not in "NC")
        rsp = tuple(c for c in rhs if c not in "IO")
        osp = tuple(c for c in out if c not in "NC")
        if len(self.spatial) != n or sorted(rsp) != sorted(self.spatial) or \
                sorted(osp) != sorted(self.spatial):
            raise ValueError(f"{layer}: `dimension_numbers` {tuple(dimension_numbers)} must name "
                             f"the same {n} spatial axes (one per filter dimension) in lhs, rhs "
                             "and out.")
        self.lhs, self.rhs, self.out = lhs, rhs, out
        self.rhs_spatial = rsp
        self.filter_perm = tuple(rsp.index(c) for c in self.spatial)
        self.out_perm = tuple(self.spatial.index(c) for c in osp)

    @property
    def batch_axis(self):
        return self.lhs.index("N")

    @property
    def channel_axis(self):
        return self.lhs.index("C")

    def to_lhs_order(self, rhs_ordered):
        """Reorder a per-spatial-dimension tuple from rhs order to lhs (kernel) order."""
        return tuple(rhs_ordered[p] for p in self.filter_perm)

    def canonical_input_perm(self):
        """Axes permutation taking an ``lhs``-layout array to ``(N, spatial.., C)``."""
        return (self.lhs.index("N"),) + tuple(self.lhs.index(c) for c in self.spatial) + \
            (self.lhs.index("C"),)

    def out_from_canonical_perm(self):
        """Axes permutation taking a canonical ``(N, spatial.., C)`` output to ``out`` layout."""
        canon = ("N",) + self.spatial + ("C",)
        return tuple(canon.index(c) for c in self.out)

    def canonical_weight_perm(self):
        """Axes permutation taking an ``rhs``-layout weight to ``(f.. lhs order, I, O)``."""
        return tuple(self.rhs.index(c) for c in self.spatial) + (self.rhs.index("I"),
                                                                 self.rhs.index("O"))


def spatial_axes_of(ndim, batch_axis, channel_axis):
    """The spatial axes of an array of ``ndim`` dimensions, in order."""
    b, c = batch_axis % ndim, channel_axis % ndim
    return tuple(i for i in range(ndim) if i not in (b, c))


def permute_kernel_spatial(xp, mat, perm, n_batch, full):
    """Reorder the spatial axes of a covariance (``perm[i]`` = old index of new axis ``i``)."""
    if tuple(perm) == tuple(range(len(perm))):
        return mat
    if full:
        axes = [n_batch + 2 * p + j for p in perm for j in (0, 1)]
    else:
        axes = [n_batch + p for p in perm]
    return xp.transpose(mat, tuple(range(n_batch)) + tuple(axes))
