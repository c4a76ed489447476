"""No keyword argument accepted in silence.

Public functions that take ``**kwargs`` for Neural Tangents' sake (``kernel_fn``,
``apply_fn``, the batched and empirical kernel functions) accept only the keywords infwide
uses, and ``reject_unknown`` turns any other into a ``TypeError`` that names it: a typo such
as ``kernel_fn(x, None, 'ntk', W_stdd=2)`` must not be computed as if it were not there.
"""

__all__ = ["reject_unknown", "APPLY_KEYWORDS"]

# What ``apply_fn(params, x, **kwargs)`` uses: Dropout's random generator (NT's ``rng``).
APPLY_KEYWORDS = ("rng",)

# Keywords of Neural Tangents' kernel and apply functions that infwide does not implement.
_NT_ONLY = {
    "diagonal_spatial": "infwide chooses the spatial form from the network, as NT does by "
                        "default",
    "diagonal_batch": "infwide always keeps only the batch diagonal of cov1/cov2",
    "mask_constant": "infwide has no masking",
    "pattern": "infwide has no Aggregate layer",
    "mode": "give Dropout its mode when building it: stax.Dropout(rate, mode='test')",
}


def reject_unknown(where, kwargs, allowed=()):
    """Raise ``TypeError`` naming every keyword of ``kwargs`` not in ``allowed``."""
    unknown = sorted(k for k in kwargs if k not in allowed)
    if not unknown:
        return
    names = ", ".join(repr(k) for k in unknown)
    accepted = f"it accepts {', '.join(map(repr, allowed))}" if allowed else \
        "it takes no other keyword arguments"
    notes = "".join(f" `{k}`: {_NT_ONLY[k]}." for k in unknown if k in _NT_ONLY)
    if not notes and not allowed:
        notes = " Layer hyper-parameters (W_std, b_std, ...) go to the layer's constructor."
    raise TypeError(f"{where}: unknown keyword argument(s) {names}; {accepted}.{notes}")
