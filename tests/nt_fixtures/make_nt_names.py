"""The public names of Neural Tangents' top level, ``stax`` and ``predict`` (run once with the
NT oracle's python; the list is what docs/nt_api.md must cover).

    PY=$(../shared/tools/nt-oracle.sh) && $PY tests/nt_fixtures/make_nt_names.py

Writes tests/nt_fixtures/nt_names.txt: a header line with NT's version, then one
``module name`` pair per line (``nt``, ``stax`` or ``predict``), sorted.
"""
import os

import neural_tangents as nt
from neural_tangents import predict, stax

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    lines = [f"# public names of neural_tangents {nt.__version__} (make_nt_names.py)"]
    for label, module in (("nt", nt), ("stax", stax), ("predict", predict)):
        lines += [f"{label} {n}" for n in sorted(dir(module)) if not n.startswith("_")]
    with open(os.path.join(HERE, "nt_names.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
