"""scikit-learn estimators over infinitely wide networks.

``InfiniteWidthRegressor`` and ``InfiniteWidthClassifier`` (need scikit-learn:
``pip install "infwide[sklearn]"``) fit, predict and score with the NNGP or NTK of any
``stax`` network or ready architecture (``NETWORKS``), at any training time, and work in
``Pipeline`` and ``GridSearchCV``. ``import infwide`` never imports scikit-learn; importing
this package does so only when an estimator is first asked for, so ``build_network`` and
``NETWORKS`` work without it.
"""
import importlib

from .networks import NETWORKS, build_network

__all__ = ["InfiniteWidthRegressor", "InfiniteWidthClassifier", "NETWORKS", "build_network"]
_ESTIMATORS = ("InfiniteWidthRegressor", "InfiniteWidthClassifier")


def __getattr__(name):
    if name in _ESTIMATORS:
        try:
            module = importlib.import_module("._estimators", __name__)
        except ImportError as e:
            if "sklearn" not in str(e):
                raise
            raise ImportError(f"infwide.sklearn.{name} needs scikit-learn: "
                              'pip install "infwide[sklearn]"') from e
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
