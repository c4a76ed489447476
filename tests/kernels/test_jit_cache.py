"""Where Numba caches infwide's kernels (kernels/_cache.py): never beside the sources, which
for an installed infwide are in site-packages, where pip's uninstall leaves them behind as a
namespace package that shadows the next install (issue 15, item 8); ``NUMBA_CACHE_DIR`` wins.

Each case compiles one small kernel in a fresh process with its own cache folders and lists
the files written: in the chosen folder, and beside the kernel's source.
"""
import json
import os
import subprocess
import sys

import pytest

_PROBE = r"""
import json, os, sys
import numba
from infwide.kernels import _jit

def ours_square_plus_one(x):
    return x * x + 1.0

def theirs_square_plus_two(x):
    return x * x + 2.0

assert _jit.cpu_jit(ours_square_plus_one)(3.0) == 10.0
assert numba.njit(cache=True)(theirs_square_plus_two)(3.0) == 11.0   # another library's
files = lambda top: [f for _, _, fs in os.walk(top) for f in fs if "square_plus" in f]
print(json.dumps({"chosen": files(sys.argv[1]),
                  "beside": files(os.path.join(os.path.dirname(__file__), "__pycache__"))}))
"""


def _run(tmp_path, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update({k: str(v) for k, v in env_extra.items()})
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    where = env_extra.get("NUMBA_CACHE_DIR") or env_extra["XDG_CACHE_HOME"]
    r = subprocess.run([sys.executable, str(probe), str(where)], env=env, capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    ours = lambda names: sorted(f.rsplit(".", 1)[-1] for f in names if "ours_" in f)
    theirs = lambda names: sorted(f.rsplit(".", 1)[-1] for f in names if "theirs_" in f)
    return {"ours_chosen": ours(out["chosen"]), "ours_beside": ours(out["beside"]),
            "theirs_chosen": theirs(out["chosen"]), "theirs_beside": theirs(out["beside"])}


@pytest.mark.skipif(sys.platform != "linux", reason="Numba's user cache folder is XDG's on Linux")
def test_default_cache_is_the_user_cache_folder_and_only_for_infwide(tmp_path):
    out = _run(tmp_path, XDG_CACHE_HOME=tmp_path / "xdg")
    assert out == {"ours_chosen": ["nbc", "nbi"], "ours_beside": [],
                   "theirs_chosen": [], "theirs_beside": ["nbc", "nbi"]}, out


def test_numba_cache_dir_wins(tmp_path):
    out = _run(tmp_path, NUMBA_CACHE_DIR=tmp_path / "mine", XDG_CACHE_HOME=tmp_path / "xdg")
    assert out == {"ours_chosen": ["nbc", "nbi"], "ours_beside": [],
                   "theirs_chosen": ["nbc", "nbi"], "theirs_beside": []}, out
    assert not (tmp_path / "xdg").exists()


def test_a_changed_kernel_source_gets_a_fresh_cache_folder(tmp_path):
    """Numba checks a cached function against its own file only; a callee edited in another
    file must not leave the caller's stale machine code in use (bench/NOTES.md, step 20)."""
    from infwide.kernels._cache import source_stamp
    (tmp_path / "fused").mkdir()
    (tmp_path / "engine.py").write_text("def run(): return plane()\n")
    (tmp_path / "fused" / "planes.py").write_text("def plane(): return 1\n")
    first = source_stamp(str(tmp_path))
    (tmp_path / "fused" / "notes.txt").write_text("not a source")
    assert source_stamp(str(tmp_path)) == first            # only .py files count
    other = tmp_path.parent / (tmp_path.name + "-edit")
    other.mkdir()
    (other / "fused").mkdir()
    (other / "engine.py").write_text("def run(): return plane()\n")
    (other / "fused" / "planes.py").write_text("def plane(): return 2\n")
    assert source_stamp(str(other)) != first                # a callee's edit changes it
    assert len(first) == 16 and int(first, 16) >= 0


def test_kernels_cache_in_a_folder_named_after_the_sources(tmp_path):
    from infwide.kernels._cache import source_stamp
    _run(tmp_path, NUMBA_CACHE_DIR=tmp_path / "mine", XDG_CACHE_HOME=tmp_path / "xdg")
    stamped = tmp_path / "mine" / f"infwide-{source_stamp()}"
    names = [f for _, _, fs in os.walk(stamped) for f in fs]
    assert any("ours_square_plus_one" in f for f in names), names
    assert not any("theirs_" in f for f in names), names
