"""Instantiate a workload spec (``workloads``) with a given ``stax`` module: infwide's or Neural
Tangents'. Plain Python, shared by both workers."""

__all__ = ["build"]


def _args(args):
    return [tuple(a) if isinstance(a, list) else a for a in args]


def _kwargs(kwargs):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def build(stax, spec):
    """The network for ``spec``: ``serial``/``parallel`` nest, anything else is a constructor
    ``getattr(stax, name)(*args, **kwargs)``."""
    kind = spec[0]
    if kind in ("serial", "parallel"):
        return getattr(stax, kind)(*[build(stax, s) for s in spec[1]])
    return getattr(stax, kind)(*_args(spec[1]), **_kwargs(spec[2]))
