"""``infwide bench``: the benchmark harness of a source checkout (``python -m bench``).

The harness lives in the repository's ``bench/`` folder, next to the package, not inside the
installed library (it runs Neural Tangents side by side and writes result files). This command
finds it when infwide is installed from a checkout (``pip install -e .``) and passes every
argument on: ``infwide bench --workloads fc3 --dtypes float32``; ``infwide bench --help``.
"""
import argparse
import importlib
import os
import sys

__all__ = ["add_parser", "run", "find_bench"]


def find_bench():
    """The checkout root holding ``bench/cli.py``, or None (an installed wheel has none)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return root if os.path.isfile(os.path.join(root, "bench", "cli.py")) else None


def run(args):
    root = find_bench()
    if root is None:
        raise OSError("the benchmark harness is not installed with the package: run "
                      "`infwide bench` from a source checkout installed with `pip install -e .` "
                      "(or `python -m bench` in the repository root)")
    if root not in sys.path:
        sys.path.insert(0, root)
    os.chdir(root)
    return importlib.import_module("bench.cli").main(list(args.bench_args))


def add_parser(sub):
    # prefix_chars="+": every "-x" argument is passed on to the harness untouched.
    b = sub.add_parser("bench", help="benchmarks against Neural Tangents and the machine "
                                     "(source checkouts)", description=__doc__,
                       add_help=False, prefix_chars="+")
    b.add_argument("bench_args", nargs=argparse.REMAINDER,
                   help="arguments of `python -m bench` (try --help)")
    b.set_defaults(func=run)
