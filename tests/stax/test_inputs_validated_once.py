"""The raw inputs of a ``kernel_fn`` call are validated once, at the public boundary, on every
route (fused engine, layer by layer, NCHW layouts), with the same messages as before."""
import numpy as np
import pytest

from infwide import stax
from infwide.stax import _inputs
from infwide.stax._fusion import fusion_disabled

RNG = np.random.default_rng(0)
NETS = {
    "FC": (stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(8), stax.Relu(), stax.Dense(1)),
           RNG.standard_normal((3, 5))),
    "CNN-GAP": (stax.serial(stax.Conv(2, (3, 3), padding="SAME"), stax.Relu(),
                            stax.GlobalAvgPool()), RNG.standard_normal((2, 4, 4, 2))),
    "CNN-NCHW": (stax.serial(stax.Conv(2, (3, 3), dimension_numbers=("NCHW", "OIHW", "NCHW")),
                             stax.Relu(), stax.Flatten()), RNG.standard_normal((2, 2, 5, 5))),
    "Dense": (stax.Dense(3), RNG.standard_normal((3, 5))),
}


@pytest.fixture
def finite_checks(monkeypatch):
    seen = []
    real = _inputs.check_finite

    def counting(x, name, where):
        seen.append(name)
        return real(x, name, where)
    monkeypatch.setattr(_inputs, "check_finite", counting)
    return seen


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "layer-by-layer"])
def test_each_input_is_checked_once(finite_checks, name, fused):
    net, x = NETS[name]
    x2 = x[:2] + 1.0
    with fusion_disabled() if not fused else _nothing():
        net.kernel_fn(x, None, "ntk")
        assert finite_checks == ["x1"]
        finite_checks.clear()
        net.kernel_fn(x, x2)
        assert finite_checks == ["x1", "x2"]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("x2,message", [
    (np.full((2, 5), np.nan), "`x2` contains 10 NaN or Inf"),
    (np.ones((2, 4)), "same shape apart from the batch axis; got \\(3, 5\\) and \\(2, 4\\)"),
    (np.ones(5), "`x2` must have a batch axis and a channel axis"),
])
def test_x2_is_still_checked(x2, message):
    net, x = NETS["FC"]
    with pytest.raises(ValueError, match=message):
        net.kernel_fn(x, x2)


def test_the_batch_axis_of_an_nchw_network_may_differ_between_x1_and_x2():
    net, x = NETS["CNN-NCHW"]
    k = net.kernel_fn(x, x[:1] * 2.0, "nngp")
    assert k.shape == (2, 1)
    with pytest.raises(ValueError, match="same shape apart from the batch axis"):
        net.kernel_fn(x, x[:, :1])
