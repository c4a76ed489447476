"""Where Numba keeps infwide's compiled kernels: never inside the installed package.

Numba's default for ``cache=True`` is a ``__pycache__`` folder beside the source file. For an
installed infwide that folder is inside site-packages, and it outlives the package: pip
removes only the files it recorded, so after ``pip install .`` and one run, a later
``pip install -e .`` (or ``pip uninstall infwide``) leaves a ``site-packages/infwide/`` that
holds nothing but cache files. Python then imports that folder as a namespace package
``infwide`` ahead of the editable install in every process whose ``sys.path`` does not start
at the checkout (issue 15, item 8: the README's two commands failed in sequence that way).

So the kernels are cached where Numba itself caches the functions of read-only installs: its
user-wide cache folder (``~/.cache/numba`` on Linux), or a per-user folder under the
temporary directory when that one cannot be written; ``NUMBA_CACHE_DIR``, when set, wins as
it does for Numba. Numba picks a function's cache folder when the function is decorated, so
the location is set only while infwide's functions are decorated (``outside_the_package``)
and Numba's setting is restored afterwards: other libraries' caches are left alone.

Inside that folder the kernels go to a subfolder named after a hash of every source file of
``infwide.kernels`` (``source_stamp``). Numba checks a cached function against the time stamp
of its own file only, not of the files whose functions it inlined: after an edit of
``fused/planes.py`` alone, the cached ``fused/engine.run_pairs`` still held the old
convolution (bench/NOTES.md, step 20). A new hash for any changed source gives every kernel
a fresh folder, so no stale callee is ever run; an old folder is left for the user's cache
cleaner (a few MB each).
"""
import contextlib
import functools
import hashlib
import os
import tempfile

import numba

__all__ = ["cache_dir", "source_stamp", "outside_the_package"]


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


@functools.lru_cache(maxsize=None)
def cache_dir():
    """The folder for infwide's Numba cache when ``NUMBA_CACHE_DIR`` is not set: Numba's
    user-wide cache folder, else a per-user temporary one; ``""`` (Numba's default) when
    neither can be written."""
    from numba.misc.appdirs import AppDirs
    user = AppDirs(appname="numba", appauthor=False).user_cache_dir
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    for path in (user, os.path.join(tempfile.gettempdir(), f"numba-cache-{uid}")):
        if _writable(path):
            return path
    return ""


def source_stamp(root=os.path.dirname(os.path.abspath(__file__))):
    """A short hash of the names and contents of every ``.py`` file below ``root`` (by
    default the sources of ``infwide.kernels``), in a fixed order."""
    return _stamp(root)


@functools.lru_cache(maxsize=None)
def _stamp(root):
    h = hashlib.sha256()
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read() + b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def outside_the_package():
    """Decorate ``cache=True`` functions inside this block to cache them in
    ``<cache_dir() or NUMBA_CACHE_DIR>/infwide-<source_stamp()>``."""
    saved = numba.config.CACHE_DIR
    base = saved or cache_dir()
    if base:
        numba.config.CACHE_DIR = os.path.join(base, f"infwide-{source_stamp()}")
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved
