"""Wide residual networks (Zagoruyko & Komodakis 2016) in Neural Tangents' infinite-width form
(the README's ``WideResnetBlock`` / ``WideResnetGroup`` / ``WideResnet``).

A block is ``FanOut(2) -> parallel(main, shortcut) -> FanInSum()`` with
``main = [LayerNorm ->] act -> Conv(3x3, strides) [-> LayerNorm] -> act -> Conv(3x3)`` and the
shortcut the identity, or a strided 3x3 convolution where the width or resolution changes.
The network: ``Conv(16)``, three groups of ``(depth - 4) / 6`` blocks of widths
``16k, 32k, 64k`` (strides 1, 2, 2), a global average and ``Dense(out_dim, 1., 0.)``. NT's
README ends with ``AvgPool((8, 8))`` and ``Flatten`` for 32x32 images: the same map as the
global average there; the global average works for any size.
"""
from ..stax import Conv, Dense, FanInSum, FanOut, GlobalAvgPool, Identity, LayerNorm, parallel
from ..stax import serial
from ._checks import activation_layer, check_int

__all__ = ["WideResNet", "WideResnetBlock", "WideResnetGroup"]


def WideResnetBlock(channels, strides=(1, 1), channel_mismatch=False, W_std=1.0, b_std=None,
                    activation=None, layer_norm=None):
    """One residual block; ``layer_norm`` is ``None`` or the ``axis`` of a LayerNorm placed
    before each activation (e.g. ``(1, 2, 3)`` for NHWC)."""
    act = activation_layer(activation, "WideResnetBlock")
    conv = lambda s: Conv(channels, (3, 3), s, padding="SAME", W_std=W_std, b_std=b_std)
    norm = (lambda: [LayerNorm(axis=layer_norm)]) if layer_norm is not None else (lambda: [])
    main = serial(*norm(), act, conv(strides), *norm(), act, conv((1, 1)))
    shortcut = conv(strides) if channel_mismatch else Identity()
    return serial(FanOut(2), parallel(main, shortcut), FanInSum())


def WideResnetGroup(n, channels, strides=(1, 1), **block_kwargs):
    """``n`` blocks; the first changes width (and resolution when ``strides`` != 1)."""
    n = check_int(n, "n", "WideResnetGroup", 1)
    blocks = [WideResnetBlock(channels, strides, channel_mismatch=True, **block_kwargs)]
    blocks += [WideResnetBlock(channels, (1, 1), **block_kwargs) for _ in range(n - 1)]
    return serial(*blocks)


def WideResNet(depth=16, k=1, out_dim=10, W_std=1.0, b_std=None, activation=None,
               layer_norm=None):
    """WRN-``depth``-``k``: ``depth = 6 n + 4`` with ``n`` blocks per group, widths ``16k``,
    ``32k``, ``64k``."""
    depth = check_int(depth, "depth", "WideResNet", 10)
    if (depth - 4) % 6:
        raise ValueError(f"WideResNet: `depth` must be 6 n + 4 (10, 16, 22, 28, ...), got {depth}.")
    n = (depth - 4) // 6
    kw = dict(W_std=W_std, b_std=b_std, activation=activation, layer_norm=layer_norm)
    return serial(Conv(16, (3, 3), padding="SAME", W_std=W_std, b_std=b_std),
                  WideResnetGroup(n, int(16 * k), **kw),
                  WideResnetGroup(n, int(32 * k), (2, 2), **kw),
                  WideResnetGroup(n, int(64 * k), (2, 2), **kw),
                  GlobalAvgPool(), Dense(out_dim, 1.0, 0.0))
