"""scikit-learn estimators over infinitely wide networks: kernel regression with the NNGP or
NTK of any ``stax`` network, at any training time (see ``_posterior``)."""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._kernels import compute_kernels
from ._posterior import Posterior
from .networks import build_network, is_spatial_network

__all__ = ["InfiniteWidthRegressor", "InfiniteWidthClassifier"]


class _InfiniteWidthBase(BaseEstimator):
    """Parameters and the shared fit/predict machinery of both estimators."""

    def _check_params(self):
        name = type(self).__name__
        if self.get not in ("nngp", "ntk"):
            raise ValueError(f"{name}: get must be 'nngp' or 'ntk', got {self.get!r}.")
        if self.t is not None and (not isinstance(self.t, numbers.Real) or not self.t >= 0):
            raise ValueError(f"{name}: t must be a number >= 0 or None (end of training), "
                             f"got {self.t!r}.")
        if not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 0:
            raise ValueError(f"{name}: batch_size must be an integer >= 0, got {self.batch_size!r}.")

    def _shape_inputs(self, X):
        """Rows of X as network inputs: reshaped to ``input_shape`` when it is given, and
        flattened for 'fc'."""
        is_fc = isinstance(self.network, str) and self.network.lower() == "fc"
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            if int(np.prod(shape)) != int(np.prod(X.shape[1:])):
                raise ValueError(f"{type(self).__name__}: input_shape {shape} holds "
                                 f"{int(np.prod(shape))} values but each input has "
                                 f"{int(np.prod(X.shape[1:]))} features.")
            X = X.reshape((len(X),) + shape)
        elif is_spatial_network(self.network) and X.ndim == 2:
            raise ValueError(f"{type(self).__name__}: network {self.network!r} needs images or "
                             "sequences; pass input_shape=(H, W, C) (or (L, C)) to reshape "
                             "each row of X.")
        return X.reshape(len(X), -1) if is_fc else X

    def _fit_targets(self, X, Y):
        self._check_params()
        self.X_fit_ = self._shape_inputs(X)
        layer = build_network(self.network, n_spatial=self.X_fit_.ndim - 2)
        self.network_ = layer
        k = compute_kernels(layer, self.X_fit_, None, self.batch_size)
        self.posterior_ = Posterior(k[self.get], k["nngp"], Y, self.diag_reg,
                                    self.diag_reg_absolute_scale, self.learning_rate)
        return self

    def _kernels_to(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, allow_nd=True)
        return compute_kernels(self.network_, self._shape_inputs(X), self.X_fit_, self.batch_size)

    def _mean(self, X):
        k = self._kernels_to(X)
        return self.posterior_.mean(k[self.get], self.t)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class InfiniteWidthRegressor(RegressorMixin, _InfiniteWidthBase):
    """Regression with the infinite-width limit of a network (an infinite ensemble of
    infinitely wide networks trained by gradient descent on the mean squared error).

    Parameters
    ----------
    network : str or infwide.stax Layer, default='fc'
        A name from ``infwide.sklearn.NETWORKS`` or any ``stax`` network ending in a readout.
    get : {'nngp', 'ntk'}, default='ntk'
        'ntk': the network trained by gradient descent; 'nngp': only its last layer trained
        (the NNGP posterior at ``t=None``).
    t : float or None, default=None
        Training time (None: the end of training, i.e. kernel regression).
    diag_reg : float, default=1e-4
        Ridge added to the train-train kernel, relative to its mean diagonal unless
        ``diag_reg_absolute_scale`` (Neural Tangents' default is 0; a small value keeps
        duplicated inputs solvable).
    diag_reg_absolute_scale : bool, default=False
    learning_rate : float, default=1.0
        Only ``learning_rate * t`` matters (Neural Tangents' convention, with the time
        normalised by the number of targets).
    input_shape : tuple or None, default=None
        Shape each row of ``X`` is reshaped to, e.g. ``(8, 8, 1)`` for a convolutional network.
    batch_size : int, default=0
        Rows per kernel tile (0: all at once).
    normalize_y : bool, default=False
        Subtract the training targets' mean and divide by their standard deviation before
        fitting (undone in ``predict``); the kernel's prior mean is zero.
    """

    def __init__(self, network="fc", get="ntk", t=None, diag_reg=1e-4,
                 diag_reg_absolute_scale=False, learning_rate=1.0, input_shape=None,
                 batch_size=0, normalize_y=False):
        self.network, self.get, self.t, self.diag_reg = network, get, t, diag_reg
        self.diag_reg_absolute_scale, self.learning_rate = diag_reg_absolute_scale, learning_rate
        self.input_shape, self.batch_size, self.normalize_y = input_shape, batch_size, normalize_y

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, allow_nd=True, multi_output=True,
                             y_numeric=True)
        self._y_mean, self._y_std = np.zeros(y.shape[1:]), np.ones(y.shape[1:])
        if self.normalize_y:
            self._y_mean, std = y.mean(0), y.std(0)
            self._y_std = np.where(std > 0, std, 1.0)
        return self._fit_targets(X, (y - self._y_mean) / self._y_std)

    def predict(self, X, return_std=False):
        """Posterior mean at time ``t``; with ``return_std`` also the posterior standard
        deviation of each prediction (the same for every output of a multi-output fit)."""
        k = self._kernels_to(X)
        mean = self.posterior_.mean(k[self.get], self.t) * self._y_std + self._y_mean
        if not return_std:
            return mean
        var = self.posterior_.variance(self.get, k[self.get], k["nngp"], k["var1"], self.t)
        std = np.sqrt(var)
        if mean.ndim > 1:
            std = std[:, None] * self._y_std
        else:
            std = std * self._y_std
        return mean, std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class InfiniteWidthClassifier(ClassifierMixin, _InfiniteWidthBase):
    """Classification by regression on centred one-hot targets (``1 - 1/K`` for the class,
    ``-1/K`` elsewhere; Lee et al. 2020) with the infinite-width limit of a network.

    ``predict`` returns the class whose posterior-mean output is largest. ``predict_proba``
    is ``softmax(mean / temperature)``: a monotone map of the regression outputs (its argmax
    is ``predict``), not a likelihood the model was trained on; tune ``temperature`` (e.g.
    by ``GridSearchCV(scoring='neg_log_loss')``) or calibrate it when probabilities matter.
    The other parameters are those of ``InfiniteWidthRegressor``.
    """

    def __init__(self, network="fc", get="ntk", t=None, diag_reg=1e-4,
                 diag_reg_absolute_scale=False, learning_rate=1.0, input_shape=None,
                 batch_size=0, temperature=0.1):
        self.network, self.get, self.t, self.diag_reg = network, get, t, diag_reg
        self.diag_reg_absolute_scale, self.learning_rate = diag_reg_absolute_scale, learning_rate
        self.input_shape, self.batch_size, self.temperature = input_shape, batch_size, temperature

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, allow_nd=True)
        check_classification_targets(y)
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"InfiniteWidthClassifier needs samples of at least 2 classes; "
                             f"got 1 class ({self.classes_[0]!r}).")
        k = len(self.classes_)
        targets = np.full((len(y), k), -1.0 / k)
        targets[np.arange(len(y)), idx] += 1.0
        return self._fit_targets(X, targets)

    def decision_function(self, X):
        """Posterior-mean outputs, one column per class (``(n,)`` for two classes: the
        second class's output minus the first's)."""
        mean = self._mean(X)
        return mean[:, 1] - mean[:, 0] if mean.shape[1] == 2 else mean

    def predict(self, X):
        mean = self._mean(X)
        return self.classes_[np.argmax(mean, axis=1)]

    def predict_proba(self, X):
        z = self._mean(X)
        if not self.temperature > 0:
            raise ValueError(f"InfiniteWidthClassifier: temperature must be > 0, got "
                             f"{self.temperature!r}.")
        z = z / self.temperature
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))
