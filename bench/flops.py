"""The flop model of a workload: what the arithmetic of its kernel needs, implementation aside.

Counted per *unique* image pair (N1 N2 pairs, or N (N + 1) / 2 when x2 is x1: a kernel is
symmetric, and any implementation can use that), per covariance entry a layer produces:

    input kernel      2 C per entry (C channels)            (a dot product over channels)
    Dense             4     (NNGP: W2 K + b2; NTK: K' + W2 Theta)
    Conv, f taps      2 f + 2   (each of NNGP and NTK: f - 1 additions of the diagonal
                                 convolution, one scale, one add: bias or K')
    ReLU family       12    (NNGP: k11 k22, k12^2, subtraction, clamp, sqrt, atan2, F r,
                             F theta, A - F theta, times k12, add = 11; NTK: one multiply;
                             sqrt and atan2 count as one flop each, as usual)
    AvgPool, w taps   2 (w^2 + 1) per output entry in full form (a window on each position of
                      a pair), 2 (w + 1) on spatial diagonals
    GlobalAvgPool     2 per input entry;  Flatten 2 per diagonal entry;  FanInSum 2 per entry

A covariance entry is one (position, position') pair of an image pair in full form
((H W)^2 per pair), one position on spatial diagonals (H W), or one number without spatial
axes. The form is the cheapest the network allows: full spatial covariance up to the last
layer that needs it (a pooling or GlobalAvgPool), diagonals elsewhere.

Prediction (``predict-ensemble``, on stored kernels, NNGP and NTK): per kernel an
eigendecomposition of the n x n train kernel counted as 9 n^3 (tridiagonal reduction plus
eigenvectors, the usual estimate), and per time t: the mean (2 n_test n k + 2 n^2 k for the
spectral filter) and the covariance (2 n_test n^2 + 2 n_test^2 n).
"""
import math

__all__ = ["kernel_flops", "predict_flops", "pair_flops"]


def _needs_full(spec):
    kind = spec[0]
    if kind in ("serial", "parallel"):
        return any(_needs_full(s) for s in spec[1])
    return kind in ("AvgPool", "GlobalAvgPool")


def _out_size(size, f, stride, padding):
    if padding == "VALID":
        return (size - f) // stride + 1
    return -(-size // stride)


def _entries(hw, full):
    if hw is None:
        return 1
    n = hw[0] * hw[1]
    return n * n if full else n


def _walk(spec, hw, full, acc):
    """Add one pair's flops of ``spec`` to ``acc[0]``; returns the output spatial size."""
    kind, args, kw = (spec[0], spec[1], spec[2]) if len(spec) == 3 else (spec[0], spec[1], {})
    if kind == "serial":
        for s in args:
            hw = _walk(s, hw, full, acc)
        return hw
    if kind == "parallel":
        outs = [_walk(s, hw, full, acc) for s in args]
        return outs[0]
    if kind == "Dense":
        acc[0] += 4 * _entries(hw, full)
    elif kind in ("Relu", "LeakyRelu", "Abs", "ABRelu"):
        acc[0] += 12 * _entries(hw, full)
    elif kind == "Conv":
        f, strides = args[1], (args[2] if len(args) > 2 and args[2] else [1, 1])
        pad = kw.get("padding", "VALID")
        hw = tuple(_out_size(n, k, s, pad) for n, k, s in zip(hw, f, strides))
        acc[0] += (2 * math.prod(f) + 2) * _entries(hw, full)
    elif kind == "AvgPool":
        w, strides = args[0], kw.get("strides", args[0])
        pad = kw.get("padding", "VALID")
        hw = tuple(_out_size(n, k, s, pad) for n, k, s in zip(hw, w, strides))
        taps = math.prod(w)
        acc[0] += 2 * ((taps * taps if full else taps) + 1) * _entries(hw, full)
    elif kind == "GlobalAvgPool":
        acc[0] += 2 * _entries(hw, full)
        hw = None
    elif kind == "Flatten":
        acc[0] += 2 * _entries(hw, False)
        hw = None
    elif kind == "FanInSum":
        acc[0] += 2 * _entries(hw, full)
    return hw


def pair_flops(spec, shape):
    """Flops of one image pair: the input kernel, then every layer."""
    spatial = tuple(shape[:-1]) if len(shape) > 1 else None
    full = spatial is not None and _needs_full(spec)
    acc = [2 * shape[-1] * _entries(spatial, full)]
    _walk(spec, spatial, full, acc)
    return acc[0]


def kernel_flops(spec, shape, n1, n2=None):
    """Whole-kernel flops: ``n2=None`` means x2 = x1 (N (N + 1) / 2 unique pairs)."""
    pairs = n1 * (n1 + 1) // 2 if n2 is None else n1 * n2
    return pairs * pair_flops(spec, shape)


def predict_flops(spec, shape, n, n_test, n_out=10, n_times=20):
    """Prediction on stored kernels, NNGP and NTK (``get=None``) with covariances: per
    kernel one eigendecomposition (9 n^3) and, per time, the mean and the covariance."""
    per_t = 2 * n_test * n * n_out + 2 * n * n * n_out + 2 * n_test * n * n + \
        2 * n_test * n_test * n
    return 2 * (9 * n ** 3 + n_times * per_t)
