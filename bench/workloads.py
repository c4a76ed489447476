"""The named workloads: architecture specs, input sizes and flop models.

Plain Python (NumPy at most): this module is imported both by the infwide worker and by the
Neural Tangents worker (run by another interpreter), so it must import neither library.

An architecture is a nested spec, instantiated by ``build.build(stax_module, spec)`` with
either library's ``stax``:

    ("Conv", args, kwargs)   any layer constructor of the stax module
    ("serial", [specs])      ("parallel", [specs])

Sizes: ``full`` is the benchmark, ``small`` a quicker run with the same shapes of work,
``tiny`` runs in seconds (tests). A workload's ``n`` (and ``n_test`` for predictions) can be
overridden from the command line. ``n64``: Neural Tangents holds several (N, N, 32, 32, 32, 32)
tensors at once (8.4 GB for Myrtle-5 on 16 images in float32, measured), so the float64 runs
of the Myrtle workloads use 8 images to stay within this machine's 24 GB.
"""
import dataclasses

SQRT2 = 2 ** 0.5

__all__ = ["Workload", "WORKLOADS", "get", "names", "SIZES"]

SIZES = ("tiny", "small", "full")


def _layer(name, *args, **kwargs):
    return (name, list(args), kwargs)


def _serial(*specs):
    return ("serial", list(specs))


def fc3():
    """Three hidden ReLU layers (NT's README example: W_std 1.5, b_std 0.05) and a readout."""
    hidden = [_layer("Dense", 512, W_std=1.5, b_std=0.05), _layer("Relu")]
    return _serial(*(hidden * 3), _layer("Dense", 1, W_std=1.5, b_std=0.05))


def cnn_flatten():
    """Four 3x3 'SAME' convolutions with ReLU, read out with Flatten (spatial diagonals only)."""
    block = [_layer("Conv", 64, [3, 3], padding="SAME", W_std=SQRT2, b_std=0.05),
             _layer("Relu")]
    return _serial(*(block * 4), _layer("Flatten"), _layer("Dense", 1, W_std=SQRT2, b_std=0.05))


def myrtle(depth):
    """Myrtle-5/10 (Shankar et al. 2020; NT's notebook) with the global-average tail, as
    ``infwide.models.Myrtle(depth, final='gap')``: 3x3 'SAME' convolutions (W_std sqrt 2,
    b_std 0), 2x2 average pools, GlobalAvgPool, Dense(10)."""
    stages = {5: (2, 1, 1), 10: (3, 3, 3)}[depth]
    conv = _layer("Conv", 128, [3, 3], padding="SAME", W_std=SQRT2, b_std=0.0)
    layers = []
    for s, n in enumerate(stages):
        layers += [conv, _layer("Relu")] * n
        if s < 2:
            layers.append(_layer("AvgPool", [2, 2], strides=[2, 2]))
    layers += [_layer("GlobalAvgPool"), _layer("Dense", 10, W_std=SQRT2, b_std=0.0)]
    return _serial(*layers)


def _wrn_block(channels, strides, mismatch):
    conv = lambda s: _layer("Conv", channels, [3, 3], s, padding="SAME", W_std=1.0)
    main = _serial(_layer("Relu"), conv(strides), _layer("Relu"), conv([1, 1]))
    short = conv(strides) if mismatch else _layer("Identity")
    return _serial(_layer("FanOut", 2), ("parallel", [main, short]), _layer("FanInSum"))


def wrn():
    """WRN-10-1 (one block per group; NT's README WideResnet with the GlobalAvgPool tail, as
    ``infwide.models.WideResNet(10, 1)``)."""
    return _serial(_layer("Conv", 16, [3, 3], padding="SAME", W_std=1.0),
                   _wrn_block(16, [1, 1], True), _wrn_block(32, [2, 2], True),
                   _wrn_block(64, [2, 2], True), _layer("GlobalAvgPool"),
                   _layer("Dense", 10, W_std=1.0, b_std=0.0))


def predict_net():
    """The network whose kernels ``bench/predict_bench.py`` precomputes (its ``NET``)."""
    return _serial(_layer("Dense", 512, W_std=1.5, b_std=0.05), _layer("Relu"),
                   _layer("Dense", 1, W_std=1.5, b_std=0.05))


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    kind: str            # "kernel" (kernel_fn(x, None, ('nngp', 'ntk'))) or "predict"
    spec: tuple
    shape: tuple         # one input, without the batch axis
    n: dict              # size -> number of inputs (training points for "predict")
    what: str
    n_test: dict = None  # "predict": test points per size
    n_check: int = 4     # inputs used to check the fused kernel against the reference path
    n64: dict = None     # size -> inputs in float64 where it differs (NT's memory, see below)


WORKLOADS = {w.name: w for w in [
    Workload("fc3", "kernel", fc3(), (784,), {"tiny": 40, "small": 500, "full": 2000},
             "3 hidden ReLU layers, 2000 x 784 inputs, NNGP+NTK (2000 x 2000)", n_check=64),
    Workload("cnn-flatten", "kernel", cnn_flatten(), (32, 32, 3),
             {"tiny": 5, "small": 50, "full": 200},
             "4 x (Conv 3x3 SAME, ReLU), Flatten, Dense; 200 images 32x32x3", n_check=6),
    Workload("myrtle5-gap", "kernel", myrtle(5), (32, 32, 3), {"tiny": 2, "small": 4, "full": 16},
             "Myrtle-5 with GlobalAvgPool; 16 images 32x32x3 (full spatial covariance)",
             n_check=2, n64={"full": 8}),
    Workload("myrtle10-gap", "kernel", myrtle(10), (32, 32, 3),
             {"tiny": 2, "small": 4, "full": 16},
             "Myrtle-10 with GlobalAvgPool; 16 images 32x32x3", n_check=2, n64={"full": 8}),
    Workload("wrn-gap", "kernel", wrn(), (32, 32, 3), {"tiny": 2, "small": 3, "full": 8},
             "WRN-10-1 (residual, strided convs) with GlobalAvgPool; 8 images 32x32x3",
             n_check=2),
    Workload("predict-ensemble", "predict", predict_net(), (32,),
             {"tiny": 60, "small": 600, "full": 3000},
             "gradient_descent_mse_ensemble (bench/predict_bench.py): 3000 train, 500 test, "
             "10 outputs, 20 times, NNGP and NTK, mean and covariance, precomputed kernels",
             n_test={"tiny": 10, "small": 100, "full": 500}),
]}

#: Tiny sizes shrink the images too (tests); a spatial workload keeps its structure.
TINY_SHAPE = {"cnn-flatten": (8, 8, 3), "myrtle5-gap": (8, 8, 3), "myrtle10-gap": (8, 8, 3),
              "wrn-gap": (8, 8, 3), "fc3": (20,), "predict-ensemble": (32,)}


def names():
    return list(WORKLOADS)


def get(name):
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; expected one of {names()}")
    return WORKLOADS[name]


def input_shape(w, size):
    return TINY_SHAPE[w.name] if size == "tiny" else w.shape
