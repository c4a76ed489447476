"""Bad inputs to the spatial layers: ValueErrors that name the layer and the shapes."""
import numpy as np
import pytest

from infwide import stax

X = np.random.default_rng(0).standard_normal((2, 4, 4, 3))


def test_image_too_small_for_a_valid_filter():
    net = stax.serial(stax.Conv(2, (3, 3)), stax.Relu(), stax.Conv(2, (3, 3)), stax.Flatten())
    msg = r"Conv\(2, \(3, 3\)\): input of shape \(2, 2, 2, 2\) is too small for the filter " \
          r"\(3, 3\) with padding 'VALID'"
    with pytest.raises(ValueError, match=msg):
        net.init_fn(0, X.shape)
    with pytest.raises(ValueError, match=r"Conv\(2, \(3, 3\)\): input of shape .* too small"):
        net.kernel_fn(X)
    _, p = stax.Conv(2, (3, 3)).init_fn(0, X.shape)
    with pytest.raises(ValueError, match=r"shape \(2, 2, 5, 3\) is too small.*axis 'A' has size 2"):
        stax.Conv(2, (3, 3)).apply_fn(p, np.ones((2, 2, 5, 3)))
    assert stax.Conv(2, (3, 3), padding="SAME").init_fn(0, (2, 2, 2, 3))[0] == (2, 2, 2, 2)


def test_image_too_small_for_a_valid_pool():
    with pytest.raises(ValueError, match=r"AvgPool\(\(5, 2\)\): input of shape \(2, 4, 4, 3\) is "
                                         r"too small for the window \(5, 2\)"):
        stax.AvgPool((5, 2)).init_fn(0, X.shape)
    net = stax.serial(stax.Conv(2, (3, 3)), stax.Relu(), stax.SumPool((3, 3)), stax.Flatten())
    with pytest.raises(ValueError, match=r"SumPool\(\(3, 3\)\): input of shape .*too small"):
        net.kernel_fn(X)


@pytest.mark.parametrize("make", [lambda p: stax.Conv(2, (3, 3), padding=p),
                                  lambda p: stax.ConvTranspose(2, (3, 3), padding=p),
                                  lambda p: stax.ConvLocal(2, (3, 3), padding=p),
                                  lambda p: stax.AvgPool((2, 2), padding=p),
                                  lambda p: stax.SumPool((2, 2), padding=p)])
def test_unknown_padding(make):
    with pytest.raises(ValueError, match=r"unknown `padding` 'REFLECT'; expected one of "
                                         r"\('VALID', 'SAME', 'CIRCULAR'\)"):
        make("REFLECT")
    assert make("same").padding == "SAME"        # case-insensitive spelling is accepted


def test_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match=r"Conv\(2, \(3, 3\)\): expected inputs with 2 spatial "
                                         r"dimensions laid out as 'NABC', got shape \(2, 4, 3\)"):
        stax.Conv(2, (3, 3)).init_fn(0, (2, 4, 3))
    _, p = stax.Conv(2, (2, 2)).init_fn(0, X.shape)
    with pytest.raises(ValueError,
                       match=r"expected inputs with 3 channels .* got shape \(2, 4, 4, 5\)"):
        stax.Conv(2, (2, 2)).apply_fn(p, np.ones((2, 4, 4, 5)))
    with pytest.raises(ValueError, match="`strides` must be a sequence of 2 integers >= 1"):
        stax.Conv(2, (3, 3), strides=(0, 1))
    with pytest.raises(ValueError, match="`filter_shape` must be a sequence of 2 integers >= 1"):
        stax.Conv(2, (3, 2.5))
    with pytest.raises(ValueError, match="dimension_numbers"):
        stax.Conv(2, (3, 3), dimension_numbers=("NCHW", "OIHW", "NCHWX"))
    with pytest.raises(ValueError, match="must name the same 2 spatial axes"):
        stax.Conv(2, (3, 3), dimension_numbers=("NCHW", "OIHD", "NCHW"))
    with pytest.raises(ValueError, match="`parameterization` must be 'ntk' or 'standard'"):
        stax.Conv(2, (3, 3), parameterization="mup")
    with pytest.raises(ValueError, match=r"Conv\(2, \(3,\)\): expected inputs with 1 spatial "
                                         r"dimensions laid out as 'NAC', got shape \(2, 4, 4, 3\)"):
        stax.Conv(2, (3,)).kernel_fn(X)
    k2d = stax.Conv(2, (3, 3)).kernel_fn(X)
    with pytest.raises(ValueError, match=r"Conv\(2, \(3,\)\): expected a kernel with 1 spatial "
                                         r"dimensions, got inputs of shape \(2, 2, 2, 2\)"):
        stax.Conv(2, (3,)).kernel_fn(k2d)


def test_fan_in_sum_with_mismatched_channels_names_the_shapes():
    net = stax.serial(stax.FanOut(2), stax.parallel(stax.Conv(3, (2, 2), padding="SAME"),
                                                    stax.Conv(4, (2, 2), padding="SAME")),
                      stax.FanInSum())
    msg = r"FanInSum: all branches must have the same shape .*\(2, 4, 4, 3\), \(2, 4, 4, 4\)"
    with pytest.raises(ValueError, match=msg):
        net.init_fn(0, X.shape)
    with pytest.raises(ValueError, match=msg):
        net.kernel_fn(X)


def test_layernorm_and_dropout_arguments():
    net = stax.serial(stax.Conv(2, (2, 2)), stax.LayerNorm(axis=(1, 2)))
    with pytest.raises(ValueError, match=r"LayerNorm\(axis=\(1, 2\)\): normalisation over the "
                                         r"channel axis \(3\) is necessary"):
        net.kernel_fn(X)
    with pytest.raises(ValueError, match="LayerNorm.*needs a Gaussian input"):
        stax.serial(stax.Conv(2, (2, 2)), stax.Relu(), stax.LayerNorm()).kernel_fn(X)
    with pytest.raises(ValueError, match=r"`axis` \(7,\) out of range"):
        stax.LayerNorm(axis=7).apply_fn((), X)
    with pytest.raises(ValueError,
                       match=r"probability to keep a unit and must be in \(0, 1\], got 0"):
        stax.Dropout(0.0)
    with pytest.raises(ValueError, match="`mode` must be 'train' or 'test', got 'eval'"):
        stax.Dropout(0.5, "eval")
    with pytest.raises(ValueError, match="Dropout.*needs an `rng` keyword argument"):
        stax.Dropout(0.5).apply_fn((), X)
