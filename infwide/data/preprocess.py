"""Preprocessing for kernel regression: standardisation, per-image normalisation, regularised
ZCA whitening and centred one-hot targets.

Statistics are always estimated on the training inputs and then applied unchanged to any
other inputs, so no test information leaks into the training set.
"""
import numpy as np

__all__ = ["standardize", "normalize_per_image", "zca_whitening_matrix", "zca_whiten",
           "one_hot"]


def _flat(x, name):
    x = np.asarray(x)
    if x.ndim < 2 or x.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must be a real array of shape (N, features...), got "
                         f"{x.dtype} {x.shape}.")
    return x.reshape(len(x), -1).astype(np.float64)


def standardize(x_train, *others, eps=1e-12):
    """Give every feature zero mean and unit variance over the training set.

    ``x' = (x - mean_train) / std_train`` per feature; constant features are only centred.
    Returns the transformed ``x_train`` followed by each of ``others``.
    """
    xt = _flat(x_train, "x_train")
    mean, std = xt.mean(0), xt.std(0)
    std = np.where(std > eps, std, 1.0)
    out = [(xt - mean) / std] + [(_flat(o, "x") - mean) / std for o in others]
    return tuple(o.reshape((len(o),) + np.shape(src)[1:])
                 for o, src in zip(out, (x_train,) + others))


def normalize_per_image(x, eps=1e-12):
    """Per-example normalisation: subtract each example's mean over all its features, then
    scale it to unit mean square (norm ``sqrt(d)`` for ``d`` features).

    This is Lee et al. (2020)'s per-image "layer norm" step (zero mean, unit norm) times
    ``sqrt(d)``, so that the input kernel ``x . x' / d`` is 1 on the diagonal; an all-constant
    example becomes zero.
    """
    flat = _flat(x, "x")
    flat = flat - flat.mean(1, keepdims=True)
    rms = np.sqrt((flat ** 2).mean(1, keepdims=True))
    flat = flat / np.where(rms > eps, rms, 1.0)
    return flat.reshape(np.shape(x))


def zca_whitening_matrix(x_train, reg=0.1, reg_absolute_scale=False):
    """The symmetric ZCA whitening matrix ``W = U (S + eps I)^(-1/2) U^T`` of the training
    inputs, acting on flattened examples from the right (``x_white = x_flat @ W``).

    ``S`` and ``U`` are the eigenvalues and vectors of the second-moment matrix
    ``C = X^T X / n`` of the flattened training inputs ``X`` (n x d); ``eps = reg * tr(C) / d``,
    i.e. ``reg`` relative to the mean eigenvalue (``reg`` itself when ``reg_absolute_scale``),
    as in Lee et al. 2020, "Finite versus infinite neural networks: an empirical study",
    section on ZCA regularisation. When ``n < d`` only the top ``n`` directions carry data:
    the others are left unscaled (factor 1), as in their implementation.
    """
    xt = _flat(x_train, "x_train")
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"zca_whitening_matrix: `reg` must be a finite number >= 0, got {reg!r}.")
    n, d = xt.shape
    cov = xt.T @ xt / n
    eps = reg if reg_absolute_scale else reg * np.trace(cov) / d
    s, u = np.linalg.eigh(cov + eps * np.eye(d))
    s, u = s[::-1], u[:, ::-1]
    if s[-1] <= 0:
        raise ValueError("zca_whitening_matrix: the regularised second-moment matrix is singular; "
                         "use reg > 0.")
    scale = s ** -0.5
    scale[n:] = 1.0
    return (u * scale) @ u.T


def zca_whiten(x_train, *others, reg=0.1, reg_absolute_scale=False, per_image=True):
    """Regularised ZCA whitening (Lee et al. 2020): optionally normalise each example
    (``normalize_per_image``), estimate ``zca_whitening_matrix`` on the training inputs and
    apply it to ``x_train`` and each of ``others``; shapes are kept."""
    prep = normalize_per_image if per_image else (lambda a: np.asarray(a, dtype=np.float64))
    xs = [prep(x_train)] + [prep(o) for o in others]
    w = zca_whitening_matrix(xs[0], reg, reg_absolute_scale)
    return tuple((x.reshape(len(x), -1) @ w).reshape(x.shape) for x in xs)


def one_hot(labels, num_classes, centred=True, dtype=np.float64):
    """Targets for regression on class labels: ``(N, num_classes)``.

    ``centred=True`` (the default) subtracts ``1 / num_classes``: the correct class gets
    ``1 - 1/K`` and the others ``-1/K`` (0.9 and -0.1 for ten classes), the zero-mean
    targets of Lee et al. 2020 and Neural Tangents' examples. ``centred=False`` gives 1 and 0.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: `labels` must be a 1-d integer array, got {y.dtype} {y.shape}.")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"one_hot: `num_classes` must be an integer >= 2, got {num_classes!r}.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in 0..{num_classes - 1}; found "
                         f"{int(y.min())}..{int(y.max())}.")
    out = np.zeros((len(y), int(num_classes)), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out - 1.0 / num_classes if centred else out
