"""Argument types shared by the subcommands (argparse turns their errors into usage errors)."""
import argparse

__all__ = ["positive_int"]


def positive_int(text):
    """``int(text)``, refused unless it is at least 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v
