"""The ``infwide`` command line. Each subcommand lives in its own module of this package,
exposing ``add_parser(subparsers)`` (which sets ``func``); ``COMMANDS`` lists them in order.

Exit codes: 0 on success, 2 on a usage error (argparse), 1 on a failure, with one clear line
on stderr rather than a traceback.
"""
import argparse
import importlib
import sys

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ["kernel", "classify", "bench", "demo"]


def build_parser():
    p = argparse.ArgumentParser(prog="infwide", description="Infinitely wide neural networks "
                                "without JAX: kernels, predictions, demos and benchmarks.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, MemoryError) as e:
        print(f"infwide {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"infwide {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
