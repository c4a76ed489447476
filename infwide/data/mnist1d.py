"""MNIST-1D, generated locally (Greydanus 2020, "Scaling down deep learning",
arXiv:2011.14439; the procedure and defaults of its reference generator).

Ten hand-made templates of length 12, one per digit, become 40-sample signals:

1. template: the 12 values, standardised (zero mean, unit standard deviation), shifted so the
   signal starts at 0, divided by 6; the time axis is ``linspace(-5, 5, 12) / 6``;
2. pad: ``eps = 1e-8`` is added and ``p`` zeros appended, ``p`` uniform in
   ``padding = [36, 60]`` (inclusive);
3. dilate: linear interpolation of the padded signal onto ``12 + 60 = 72`` evenly spaced points;
4. scale: multiply by ``1 + scale_coeff * (u - 1/2)``, ``scale_coeff = 0.4``;
5. translate: roll right by ``k`` uniform in ``0 .. max_translation - 1`` (48);
6. correlated noise where the signal is exactly zero: Gaussian noise of standard deviation
   ``corr_noise_scale = 0.25`` smoothed by a Gaussian filter with sigma 2 (reflecting edges);
   then i.i.d. Gaussian noise of standard deviation ``iid_noise_scale = 0.02`` everywhere;
7. shear: subtract ``c * linspace(-1/2, 1/2, 72)``, ``c = shear_scale * (u - 1/2)``,
   ``shear_scale = 0.75``;
8. subsample: linear interpolation onto ``final_seq_length = 40`` points.

``num_samples // 10`` examples are made per class, shuffled, and the whole set standardised
by its global mean and standard deviation; the first ``train_split = 0.8`` are the training
set (4000 and 1000 for the default 5000 samples). Random numbers come from a
``numpy.random.RandomState(seed)`` drawn in the order above, once per example, classes in
order (default seed 42, as in the reference generator).
"""
import numpy as np
from scipy.ndimage import gaussian_filter1d

from ._dataset import Dataset

__all__ = ["mnist1d_templates", "make_mnist1d", "MNIST1D_DEFAULTS"]

_TEMPLATE_VALUES = (
    (5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5),
    (5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5),
    (5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5),
    (5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5),
    (5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5),
    (5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5),
    (5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5),
    (5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5),
)

MNIST1D_DEFAULTS = dict(num_samples=5000, train_split=0.8, template_len=12, padding=(36, 60),
                        scale_coeff=0.4, max_translation=48, corr_noise_scale=0.25,
                        iid_noise_scale=2e-2, shear_scale=0.75, final_seq_length=40, seed=42)


def mnist1d_templates():
    """The ten digit templates ``(10, 12)`` after step 1 (standardised, start at 0, / 6)."""
    x = np.array(_TEMPLATE_VALUES, dtype=np.float64)
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x, n):
    """Linear interpolation of ``x`` (on evenly spaced points over [0, 1]) onto ``n`` points."""
    return np.interp(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, len(x)), x)


def _transform(template, rs, p):
    """Steps 2-8 of the module docstring for one example, drawing from RandomState ``rs``."""
    lo, hi = p["padding"]
    n_pad = lo + int(rs.rand() * (hi - lo + 1))
    x = np.concatenate([template + 1e-8, np.zeros(n_pad)])
    x = _resample(x, p["template_len"] + hi)
    x = x * (1 + p["scale_coeff"] * (rs.rand() - 0.5))
    x = np.roll(x, rs.choice(p["max_translation"]))
    noise = gaussian_filter1d(p["corr_noise_scale"] * rs.randn(len(x)), 2.0, mode="reflect")
    x = np.where(x != 0, x, noise)
    x = x + p["iid_noise_scale"] * rs.randn(len(x))
    x = x - p["shear_scale"] * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, p["final_seq_length"])


def _params(overrides):
    unknown = set(overrides) - set(MNIST1D_DEFAULTS)
    if unknown:
        raise TypeError(f"make_mnist1d: unknown parameter(s) {sorted(unknown)}; expected some of "
                        f"{sorted(MNIST1D_DEFAULTS)}.")
    p = dict(MNIST1D_DEFAULTS, **overrides)
    if int(p["num_samples"]) != p["num_samples"] or p["num_samples"] < 20:
        raise ValueError(f"make_mnist1d: num_samples must be an integer >= 20, got {p['num_samples']!r}.")
    if not 0 < p["train_split"] < 1:
        raise ValueError(f"make_mnist1d: train_split must lie in (0, 1), got {p['train_split']!r}.")
    if p["padding"][0] > p["padding"][1] or p["padding"][0] < 0:
        raise ValueError(f"make_mnist1d: padding must be (low, high) with 0 <= low <= high, got {p['padding']!r}.")
    return p


def make_mnist1d(n_train=None, n_test=None, **params):
    """Generate MNIST-1D as a ``Dataset`` with inputs ``(N, 40, 1)`` and labels 0..9.

    ``params`` override ``MNIST1D_DEFAULTS`` (``seed`` included); the result is a function
    of them alone. ``n_train``/``n_test`` take the first examples of each split.
    """
    p = _params(params)
    rs = np.random.RandomState(int(p["seed"]))
    templates = mnist1d_templates()
    per_class = int(p["num_samples"]) // len(templates)
    xs = np.array([_transform(templates[c], rs, p) for c in range(len(templates))
                   for _ in range(per_class)])
    ys = np.repeat(np.arange(len(templates)), per_class)
    perm = rs.permutation(len(ys))
    xs, ys = xs[perm], ys[perm]
    xs = (xs - xs.mean()) / xs.std()
    cut = int(len(ys) * p["train_split"])
    data = Dataset("mnist1d", xs[:cut, :, None], ys[:cut].astype(np.int64),
                   xs[cut:, :, None], ys[cut:].astype(np.int64), len(templates))
    return data.subset(n_train, n_test)
