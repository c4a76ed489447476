"""Packaging: every sub-package is installed, and importing infwide stays light."""
import configparser
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _on_disk():
    found = set()
    for top, name in (("infwide", "infwide"), ("kernels", "infwide.kernels")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                rel = os.path.relpath(folder, os.path.join(ROOT, top))
                found.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return found


def test_every_subpackage_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(cfg["options"]["packages"].split())
    assert listed == _on_disk()


def test_core_dependencies_are_numpy_scipy_numba():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    reqs = [r.split(">")[0].split("=")[0].split("<")[0].strip()
            for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    assert sorted(reqs) == ["numba", "numpy", "scipy"]


def test_import_is_light():
    code = ("import sys, infwide; bad = [m for m in ('cupy', 'numba.cuda', 'torch', 'jax', "
            "'sklearn', 'dask', 'matplotlib') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
