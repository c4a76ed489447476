r"""The largest stable learning rate for (momentum) gradient descent on the MSE loss."""
from ..backend import as_array, get_xp
from ._factor import TrainFactors
from ._linalg import largest_eigenvalue

__all__ = ["max_learning_rate"]

_WHERE = "max_learning_rate"


def max_learning_rate(ntk_train_train, y_train_size=None, momentum=0., eps=1e-12):
    r"""Largest learning rate for which discrete gradient descent on the MSE loss converges.

    For the loss :math:`\frac{1}{2|y|}\|f - y\|^2` a step maps the residual by
    :math:`I - \frac{\eta}{|y|}\Theta`, a contraction iff :math:`\eta < 2|y|/\lambda_{\max}`;
    heavy-ball momentum :math:`\beta` widens this to :math:`2(1 + \beta)|y|/\lambda_{\max}`
    (Goh 2017, "Why Momentum Really Works", Distill, Sec. "The Dynamics of Momentum"). NT's
    ``max_learning_rate``.

    Args:
      ntk_train_train: the NTK on the training data (any zipped layout; flattened to 2-D).
      y_train_size: ``y_train.size``; ``None`` infers it from the kernel assuming
        ``trace_axes=()`` (the flattened kernel's side).
      momentum: the momentum coefficient.
      eps: added to :math:`\lambda_{\max}` to avoid a zero divisor.

    Returns:
      ``2 * (1 + momentum) * y_train_size / (lambda_max + eps)`` as a float.
    """
    k = as_array(ntk_train_train, "ntk_train_train")
    factors = TrainFactors(k, "`ntk_train_train`", _WHERE, 0., True, None)
    size = factors.n if y_train_size is None else int(y_train_size)
    lam_max = largest_eigenvalue(get_xp(k), factors.working_copy())
    return 2 * (1 + float(momentum)) * size / (lam_max + float(eps))
