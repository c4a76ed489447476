"""kernels.gram: the banded Gram product equals x1 x2^T on the entries it specifies."""
import contextlib

import numpy as np
import pytest

from infwide.kernels import gram as gram_mod
from infwide.kernels.gram import band_edges, gram


class _NoLimit:
    """Stands in for threadpoolctl's controller, so the bands run even without it."""

    def limit(self, **kwargs):
        return contextlib.nullcontext()


def _reference(x1, x2):
    return x1.astype(np.float64) @ (x1 if x2 is None else x2).astype(np.float64).T


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("shape", [(600, None, 200), (500, 300, 240), (257, None, 1100)])
@pytest.mark.parametrize("threads", [2, 3, 5])
def test_banded_product_matches_reference(monkeypatch, dtype, tol, shape, threads):
    monkeypatch.setattr(gram_mod, "SPLIT_MIN", 1)   # force the banded route at test sizes
    monkeypatch.setitem(gram_mod._STATE, "controller", _NoLimit())
    n1, n2, d = shape
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((n1, d)).astype(dtype)
    x2 = None if n2 is None else rng.standard_normal((n2, d)).astype(dtype)
    g = gram(x1, x2, threads=threads)
    ref = _reference(x1, x2)
    assert g.dtype == dtype and g.shape == ref.shape
    if x2 is None:   # only the upper triangle and the diagonal are specified
        iu = np.triu_indices(n1)
        g, ref = g[iu], ref[iu]
    assert np.abs(g - ref).max() <= tol * np.abs(ref).max()


def test_without_threadpoolctl_falls_back_to_one_blas_call(monkeypatch):
    monkeypatch.setattr(gram_mod, "SPLIT_MIN", 1)
    monkeypatch.setitem(gram_mod._STATE, "controller", False)
    x = np.random.default_rng(1).standard_normal((300, 50))
    np.testing.assert_array_equal(gram(x, threads=2), x @ x.T)


@pytest.mark.parametrize("n,threads", [(2000, 2), (1000, 3), (97, 4), (10, 8)])
def test_band_edges_split_the_triangle_evenly(n, threads):
    e = band_edges(n, threads, symmetric=True)
    assert e[0] == 0 and e[-1] == n and np.all(np.diff(e) > 0)
    work = [(b - a) * (n - a) - (b - a) * (b - a - 1) / 2 for a, b in zip(e[:-1], e[1:])]
    assert sum(work) == n * (n + 1) / 2
    if len(e) == threads + 1 and n >= 100:
        assert max(work) / min(work) < 1.05
    eq = band_edges(n, threads, symmetric=False)
    assert eq[0] == 0 and eq[-1] == n and np.all(np.diff(eq) > 0)


@pytest.mark.parametrize("shape,dtype", [((300, 700), np.float32), ((5, 0), np.float64),
                                         ((3, 4, 5000), np.float64)])
def test_touched_empty_is_a_plain_c_ordered_array(shape, dtype):
    from infwide.kernels._alloc import touched_empty
    a = touched_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    a[...] = 1
    assert a.sum() == a.size
