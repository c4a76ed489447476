"""NT batches empirical kernels (``nt.batch(nt.empirical_ntk_fn(f), ...)``); so does infwide:
same signature, same numbers as unbatched, in NT's spelling (issue 19)."""
import numpy as np
import pytest

import infwide
from infwide import stax


@pytest.fixture(scope="module")
def net():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(3))
    _, params = init_fn(0, (-1, 4))
    rng = np.random.default_rng(1)
    return apply_fn, params, rng.normal(size=(11, 4)), rng.normal(size=(7, 4))


def test_batched_empirical_ntk_fn_positional_params(net):
    apply_fn, params, x1, x2 = net
    ntk_fn = infwide.empirical_ntk_fn(apply_fn)
    want = ntk_fn(x1, None, params)
    got = infwide.batch(ntk_fn, batch_size=4, device_count=0)(x1, None, params)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    got = infwide.batch(ntk_fn, batch_size=4, device_count=0)(x1, x2, params=params)
    np.testing.assert_allclose(got, ntk_fn(x1, x2, params), rtol=1e-12, atol=1e-12)


def test_batched_empirical_kernel_fn_get(net):
    apply_fn, params, x1, x2 = net
    kernel_fn = infwide.empirical_kernel_fn(apply_fn)
    batched = infwide.batch(kernel_fn, batch_size=3)
    np.testing.assert_allclose(batched(x1, None, "ntk", params=params),
                               kernel_fn(x1, None, "ntk", params), rtol=1e-12, atol=1e-12)
    both = batched(x1, x2, None, params)
    want = kernel_fn(x1, x2, None, params)
    assert type(both).__name__ == "EmpiricalKernel" and both._fields == ("nngp", "ntk")
    for g, w in zip(both, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    one = batched(x1, x2, ("nngp",), params=params)
    np.testing.assert_allclose(one.nngp, want.nngp, rtol=1e-12, atol=1e-12)


def test_batched_empirical_untraced_output_axes(net):
    """trace_axes=(): pair tensors (N1, N2, K, K); x2=None must not mirror them wrongly."""
    apply_fn, params, x1, _ = net
    ntk_fn = infwide.empirical_ntk_fn(apply_fn, trace_axes=())
    want = ntk_fn(x1, None, params)
    assert want.shape == (11, 11, 3, 3)
    got = infwide.batch(ntk_fn, batch_size=4)(x1, None, params)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_batched_empirical_errors_name_the_argument(net):
    apply_fn, params, x1, _ = net
    batched = infwide.batch(infwide.empirical_ntk_fn(apply_fn), batch_size=4)
    with pytest.raises(TypeError, match="params"):
        batched(x1, None)
    with pytest.raises(TypeError, match="multiple values for argument 'params'"):
        batched(x1, None, params, params=params)
    with pytest.raises(TypeError, match="W_std"):
        batched(x1, None, params, W_std=2.)


def test_ntk_implementation_nt_spelling(net):
    """NT clients pass ``implementation=nt.NtkImplementation.X`` (or its int); same NTK."""
    apply_fn, params, x1, x2 = net
    assert [(m.name, m.value) for m in infwide.NtkImplementation] == [
        ("AUTO", 0), ("JACOBIAN_CONTRACTION", 1), ("NTK_VECTOR_PRODUCTS", 2),
        ("STRUCTURED_DERIVATIVES", 3)]   # nt.NtkImplementation in NT 0.6.5
    want = infwide.empirical_ntk_fn(apply_fn)(x1, x2, params)
    for impl in list(infwide.NtkImplementation) + [2]:
        got = infwide.empirical_ntk_fn(apply_fn, vmap_axes=0, implementation=impl)(x1, x2, params)
        np.testing.assert_array_equal(got, want)
    k = infwide.empirical_kernel_fn(
        apply_fn, implementation=infwide.NtkImplementation.NTK_VECTOR_PRODUCTS)
    np.testing.assert_array_equal(k(x1, x2, "ntk", params), want)
    with pytest.raises(ValueError, match="implementation.*got 7"):
        infwide.empirical_ntk_fn(apply_fn, implementation=7)


def test_batched_empirical_store_resumes_and_refuses_other_params(net, tmp_path):
    apply_fn, params, x1, _ = net
    ntk_fn = infwide.empirical_ntk_fn(apply_fn)
    batched = infwide.batch(ntk_fn, batch_size=4, store=tmp_path / "s")
    first = np.array(batched(x1, None, params))
    np.testing.assert_allclose(first, ntk_fn(x1, None, params), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(batched(x1, None, params)), first)
    other = tuple(p if i else (p[0] * 2, p[1]) for i, p in enumerate(params))
    with pytest.raises(ValueError, match="other keyword arguments"):
        batched(x1, None, other)


def test_batched_empirical_list_outputs_refused_clearly():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(4), stax.FanOut(2),
                                       stax.parallel(stax.Dense(2), stax.Dense(3)))
    _, params = init_fn(0, (-1, 3))
    x = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="list of outputs"):
        infwide.batch(infwide.empirical_ntk_fn(apply_fn), batch_size=2)(x, None, params)
