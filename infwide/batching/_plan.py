"""Tiles: which blocks of a kernel to compute, how to compute one, where it lands.

A kernel between ``x1`` (N1 points) and ``x2`` (N2 points) is cut into row blocks of ``x1``
and column blocks of ``x2`` of any sizes. For ``x2=None`` only the upper triangle is computed:
diagonal blocks as ``kernel_fn(x1[I], None)`` (which is cheaper and gives ``cov1``), blocks
above the diagonal as ``kernel_fn(x1[I], x1[J])``, mirrored below it. The mirror of a pair
tensor swaps the two batch axes and, in the full spatial form ``(N1, N2, S1, S1', ...)``,
each pair of spatial axes (``K(x, x')[s, s'] = K(x', x)[s', s]``). ``cov1``/``cov2`` are tiled
along one axis only: each comes from the first block column/row (or the diagonal blocks).
"""
import dataclasses
from typing import Optional, Tuple

__all__ = ["Tile", "edges", "make_plan", "compute_tile", "place_tile", "mirror_axes",
           "PAIR_FIELDS", "ALL_FIELDS"]

PAIR_FIELDS = ("nngp", "ntk")
ALL_FIELDS = ("nngp", "ntk", "cov1", "cov2")


@dataclasses.dataclass(frozen=True)
class Tile:
    """One unit of work: ``kernel_fn(src1[rows], src2[cols] or None)``, keeping ``fields``.

    ``src1``/``src2`` name the inputs (``'x1'``, ``'x2'``; ``src2=None`` for a diagonal block,
    whose columns are then its rows). ``mirror`` also writes the mirrored block below the
    diagonal. A diagonal block of ``x2`` (``src1='x2'``) delivers ``cov2`` from its ``cov1``.
    """
    key: str
    src1: str
    rows: Tuple[int, int]
    src2: Optional[str]
    cols: Tuple[int, int]
    fields: Tuple[str, ...]
    mirror: bool = False

    @property
    def n_pairs(self):
        return (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])

    def describe(self):
        what = f"{self.src1}[{self.rows[0]}:{self.rows[1]}]"
        if self.src2 is not None:
            what += f" x {self.src2}[{self.cols[0]}:{self.cols[1]}]"
        return f"tile {self.key} ({what})"


def edges(n, b):
    """Boundaries of ``ceil(n / b)`` nearly equal blocks covering ``range(n)``."""
    k = max(1, -(-n // max(1, b)))
    return [int(round(i * n / k)) for i in range(k + 1)]


def make_plan(n1, n2, b1, b2, symmetric, fields, row_edges=None, col_edges=None):
    """``(tiles, row_edges, col_edges)`` for the requested output ``fields``."""
    pair = [f for f in fields if f in PAIR_FIELDS]
    if symmetric:
        b = min(b1, b2)
        row_edges = row_edges or edges(n1, b)
        col_edges = row_edges
    else:
        row_edges = row_edges or edges(n1, b1)
        col_edges = col_edges or edges(n2, b2)
    r = list(zip(row_edges[:-1], row_edges[1:]))
    c = list(zip(col_edges[:-1], col_edges[1:]))
    tiles = []
    if not pair:  # only per-input covariances: diagonal blocks of x1 (and of x2)
        if "cov1" in fields:
            tiles += [Tile(f"d{i}", "x1", ri, None, ri, ("cov1",)) for i, ri in enumerate(r)]
        if "cov2" in fields and not symmetric:
            tiles += [Tile(f"e{j}", "x2", cj, None, cj, ("cov2",)) for j, cj in enumerate(c)]
        return tiles, row_edges, col_edges
    for i, ri in enumerate(r):
        for j, cj in enumerate(c):
            if symmetric and j < i:
                continue
            if symmetric and i == j:
                keep = tuple(pair) + (("cov1",) if "cov1" in fields else ())
                tiles.append(Tile(f"d{i}", "x1", ri, None, ri, keep))
                continue
            keep = tuple(pair)
            if not symmetric and j == 0 and "cov1" in fields:
                keep += ("cov1",)
            if not symmetric and i == 0 and "cov2" in fields:
                keep += ("cov2",)
            tiles.append(Tile(f"p{i}_{j}", "x1", ri, "x1" if symmetric else "x2", cj, keep,
                              mirror=symmetric))
    return tiles, row_edges, col_edges


def compute_tile(kernel_fn, inputs, tile, get_is_none, kwargs):
    """Run ``kernel_fn`` on one tile; a dict ``{field: array}`` of the kept fields."""
    a = inputs[tile.src1][tile.rows[0]:tile.rows[1]]
    b = None if tile.src2 is None else inputs[tile.src2][tile.cols[0]:tile.cols[1]]
    names = tuple("cov1" if (f == "cov2" and tile.src1 == "x2") else f for f in tile.fields)
    out = kernel_fn(a, b, None if get_is_none else names, **kwargs)
    arrays = {}
    for field, name in zip(tile.fields, names):
        v = getattr(out, name)
        if v is not None:
            arrays[field] = v
    return arrays


def mirror_axes(ndim, n_spatial, full):
    """Axis permutation taking a pair tensor K(x, x') to K(x', x)."""
    perm = [1, 0]
    if full:
        for k in range(n_spatial):
            perm += [3 + 2 * k, 2 + 2 * k]
    else:
        perm += list(range(2, ndim))
    return tuple(perm)


def place_tile(outputs, tile, arrays, n_spatial, full, convert):
    """Write a tile's arrays into the assembled ``outputs`` (dict of arrays).

    ``convert(array)`` moves a tile array to the outputs' device/kind.
    """
    r0, r1 = tile.rows
    c0, c1 = tile.cols
    for field, a in arrays.items():
        out = outputs.get(field)
        if out is None:
            continue
        a = convert(a)
        if field in PAIR_FIELDS:
            out[r0:r1, c0:c1] = a
            if tile.mirror:
                out[c0:c1, r0:r1] = a.transpose(mirror_axes(a.ndim, n_spatial, full))
        elif field == "cov1":
            out[r0:r1] = a
        else:
            out[c0:c1] = a


def fields_of(get_names):
    """The output fields for a normalised ``get`` (``None`` means the whole Kernel)."""
    return ALL_FIELDS if get_names is None else tuple(get_names)


def is_full_spatial(n_pair_axes, n_spatial):
    """Whether a pair tensor with ``n_pair_axes`` axes carries the full spatial covariance."""
    return n_spatial > 0 and n_pair_axes == 2 + 2 * n_spatial
