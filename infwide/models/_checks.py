"""Argument checks shared by the model constructors."""
from ..stax import Relu
from ..stax.layer import Layer

__all__ = ["check_int", "activation_layer"]


def check_int(value, name, model, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{model}: `{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def activation_layer(activation, model):
    """``None`` means ``Relu()``; otherwise a stax Layer (e.g. ``stax.Erf()``)."""
    if activation is None:
        return Relu()
    if isinstance(activation, Layer):
        return activation
    raise TypeError(f"{model}: `activation` must be an infwide.stax layer such as stax.Relu(), "
                    f"got {type(activation).__name__}.")
