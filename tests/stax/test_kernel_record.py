"""The ``Kernel`` record: only fields that something reads, and one per-field transform."""
import dataclasses

import numpy as np
import pytest

from infwide import stax
from infwide.kernel import Kernel
from infwide.stax._fusion import fusion_disabled


def _kernel(with_ntk=True, with_cov2=True):
    rng = np.random.default_rng(0)
    return Kernel(nngp=rng.standard_normal((3, 2, 4)), ntk=rng.standard_normal((3, 2, 4))
                  if with_ntk else None, cov1=rng.standard_normal((3, 4)),
                  cov2=rng.standard_normal((2, 4)) if with_cov2 else None,
                  shape1=(3, 4, 5), shape2=(2, 4, 5))


def test_map_covariances_gives_each_field_its_batch_axes():
    k = _kernel()
    seen = []

    def record(m, n_batch):
        seen.append((m.shape, n_batch))
        return m[(slice(None),) * n_batch + (slice(0, 1),)] * 2.0

    out = k.map_covariances(record)
    assert seen == [((3, 2, 4), 2), ((3, 2, 4), 2), ((3, 4), 1), ((2, 4), 1)]
    np.testing.assert_array_equal(out.nngp, 2.0 * k.nngp[:, :, :1])
    np.testing.assert_array_equal(out.ntk, 2.0 * k.ntk[:, :, :1])
    np.testing.assert_array_equal(out.cov1, 2.0 * k.cov1[:, :1])
    np.testing.assert_array_equal(out.cov2, 2.0 * k.cov2[:, :1])
    assert k.nngp.shape == (3, 2, 4)   # a new record; the old one is unchanged


def test_map_covariances_skips_absent_fields_and_applies_changes():
    k = _kernel(with_ntk=False, with_cov2=False)
    calls = []
    out = k.map_covariances(lambda m, nb: calls.append(nb) or m + 1.0, shape1=(3, 9),
                            diagonal_spatial=False)
    assert calls == [2, 1] and out.ntk is None and out.cov2 is None
    assert out.shape1 == (3, 9) and out.shape2 == k.shape2 and not out.diagonal_spatial
    np.testing.assert_array_equal(out.cov1, k.cov1 + 1.0)


def test_the_kernel_has_no_dead_fields():
    names = {f.name for f in dataclasses.fields(Kernel)}
    assert names == {"nngp", "ntk", "cov1", "cov2", "shape1", "shape2", "x1_is_x2",
                     "is_gaussian", "diagonal_spatial"}
    with pytest.raises(TypeError, match="is_input"):
        _kernel().replace(is_input=True)


def test_layers_use_the_transform_on_every_field():
    """Conv and pooling, layer by layer, of a kernel with cov2 (x1 != x2) transform cov2 too:
    it equals the fused engine's, and x2's own variance."""
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((3, 4, 4, 3))
    net = stax.serial(stax.Conv(2, (3, 3), padding="SAME"), stax.AvgPool((2, 2), strides=(2, 2)))
    with fusion_disabled():
        k = net.kernel_fn(x1, x2)
    assert k.cov2.shape == (3, 2, 2, 2, 2) and k.nngp.shape == (2, 3, 2, 2, 2, 2)
    np.testing.assert_allclose(net.kernel_fn(x1, x2).cov2, k.cov2, rtol=1e-12)
    with fusion_disabled():
        np.testing.assert_allclose(net.kernel_fn(x2, None).cov1, k.cov2, rtol=1e-12)
