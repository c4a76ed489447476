"""No argument accepted in silence: an unknown keyword to a layer constructor, ``kernel_fn``,
``apply_fn`` or a batched kernel function is a ``TypeError`` that names it."""
import numpy as np
import pytest

from infwide import batch, stax
from infwide.stax._fusion import fusion_disabled

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 5))
IMG = RNG.standard_normal((2, 4, 4, 2))

# Every constructor of infwide.stax with the least arguments it needs.
CONSTRUCTORS = {
    "serial": lambda **kw: stax.serial(stax.Dense(2), **kw),
    "parallel": lambda **kw: stax.parallel(stax.Dense(2), **kw),
    "FanOut": lambda **kw: stax.FanOut(2, **kw),
    "FanInSum": lambda **kw: stax.FanInSum(**kw),
    "FanInProd": lambda **kw: stax.FanInProd(**kw),
    "FanInConcat": lambda **kw: stax.FanInConcat(**kw),
    "Identity": lambda **kw: stax.Identity(**kw),
    "repeat": lambda **kw: stax.repeat(stax.Dense(2), 2, **kw),
    "Dense": lambda **kw: stax.Dense(2, **kw),
    "Relu": lambda **kw: stax.Relu(**kw),
    "LeakyRelu": lambda **kw: stax.LeakyRelu(0.1, **kw),
    "Abs": lambda **kw: stax.Abs(**kw),
    "ABRelu": lambda **kw: stax.ABRelu(0.1, 1.0, **kw),
    "Conv": lambda **kw: stax.Conv(2, (3, 3), **kw),
    "ConvTranspose": lambda **kw: stax.ConvTranspose(2, (3, 3), **kw),
    "ConvLocal": lambda **kw: stax.ConvLocal(2, (3, 3), **kw),
    "AvgPool": lambda **kw: stax.AvgPool((2, 2), **kw),
    "SumPool": lambda **kw: stax.SumPool((2, 2), **kw),
    "GlobalAvgPool": lambda **kw: stax.GlobalAvgPool(**kw),
    "GlobalSumPool": lambda **kw: stax.GlobalSumPool(**kw),
    "Flatten": lambda **kw: stax.Flatten(**kw),
    "LayerNorm": lambda **kw: stax.LayerNorm(**kw),
    "Dropout": lambda **kw: stax.Dropout(0.5, **kw),
    "Sign": lambda **kw: stax.Sign(**kw),
    "RectifiedMonomial": lambda **kw: stax.RectifiedMonomial(2, **kw),
    "Erf": lambda **kw: stax.Erf(**kw),
    "Sigmoid_like": lambda **kw: stax.Sigmoid_like(**kw),
    "Gelu": lambda **kw: stax.Gelu(**kw),
    "Sin": lambda **kw: stax.Sin(**kw),
    "Cos": lambda **kw: stax.Cos(**kw),
    "Rbf": lambda **kw: stax.Rbf(**kw),
    "Exp": lambda **kw: stax.Exp(**kw),
    "Gaussian": lambda **kw: stax.Gaussian(**kw),
    "Monomial": lambda **kw: stax.Monomial(2, **kw),
    "Polynomial": lambda **kw: stax.Polynomial([0.0, 1.0], **kw),
    "Hermite": lambda **kw: stax.Hermite(2, **kw),
    "ElementwiseNumerical": lambda **kw: stax.ElementwiseNumerical(np.tanh, 8, **kw),
}


def test_the_registry_holds_every_constructor():
    assert set(CONSTRUCTORS) == set(stax.__all__) - {"Layer"}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_a_constructor_refuses_an_unknown_keyword(name):
    assert isinstance(CONSTRUCTORS[name](), stax.Layer)
    with pytest.raises(TypeError, match="W_stdd"):
        CONSTRUCTORS[name](W_stdd=2.0)


NETS = {
    "Dense": (stax.Dense(2), X),
    "serial FC": (stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1)), X),
    "serial CNN": (stax.serial(stax.Conv(2, (3, 3)), stax.Relu(), stax.GlobalAvgPool()), IMG),
}


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "layer-by-layer"])
def test_kernel_fn_refuses_an_unknown_keyword(name, fused):
    net, x = NETS[name]
    with pytest.raises(TypeError, match="kernel_fn: unknown keyword argument.*'W_stdd'"):
        if fused:
            net.kernel_fn(x, None, "ntk", W_stdd=2)
        else:
            with fusion_disabled():
                net.kernel_fn(x, None, "ntk", W_stdd=2)
    k = net.kernel_fn(x, None)
    with pytest.raises(TypeError, match="'W_stdd'"):
        net.kernel_fn(k, W_stdd=2)   # from a Kernel, too


@pytest.mark.parametrize("nt_keyword", ["diagonal_spatial", "diagonal_batch", "mask_constant",
                                        "pattern"])
def test_nt_keywords_that_infwide_does_not_implement_are_refused_with_a_reason(nt_keyword):
    net, x = NETS["serial CNN"]
    with pytest.raises(TypeError, match=f"`{nt_keyword}`: infwide"):
        net.kernel_fn(x, None, "nngp", **{nt_keyword: False})


def test_kernel_fn_refuses_x2_beside_a_kernel():
    net, x = NETS["serial FC"]
    with pytest.raises(ValueError, match="`x2` must be None when `x1` is a Kernel"):
        net.kernel_fn(net.kernel_fn(x), x)


def test_apply_fn_uses_rng_and_refuses_anything_else():
    net = stax.serial(stax.Dense(64), stax.Dropout(0.5), stax.Dense(1))
    _, params = net.init_fn(0, X.shape)
    a, b, c = (net.apply_fn(params, X, rng=r) for r in (1, 1, 2))
    np.testing.assert_array_equal(a, b)           # the rng is read: same seed, same mask
    assert not np.allclose(a, c)                  # another seed, another mask
    with pytest.raises(ValueError, match="needs an `rng`"):
        net.apply_fn(params, X)
    with pytest.raises(TypeError, match="apply_fn: unknown keyword argument.*'mode'"):
        net.apply_fn(params, X, rng=1, mode="test")
    with pytest.raises(TypeError, match="'rgn'"):
        stax.Dense(2).apply_fn(stax.Dense(2).init_fn(0, X.shape)[1], X, rgn=1)


def test_a_batched_kernel_fn_refuses_an_unknown_keyword():
    net, x = NETS["serial FC"]
    fn = batch(net.kernel_fn, batch_size=2, executor=1)
    np.testing.assert_allclose(fn(x, None, "nngp"), net.kernel_fn(x, None, "nngp"), rtol=1e-12)
    with pytest.raises(TypeError, match="'W_stdd'"):
        fn(x, None, "nngp", W_stdd=2)
    with pytest.raises(TypeError, match="'W_stdd'"):
        fn.tiles(x, None, "nngp", W_stdd=2)
    with pytest.raises(TypeError, match="'batch_sise'"):
        batch(net.kernel_fn, batch_sise=2)
