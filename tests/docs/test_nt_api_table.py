"""docs/nt_api.md lists every public name of Neural Tangents (tests/nt_fixtures/nt_names.txt,
made with NT's oracle) once, with a status that ``dir()`` of infwide's modules confirms."""
import os
import re
import types

import pytest

import infwide
from infwide import predict, stax

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODULES = {"nt": infwide, "stax": stax, "predict": predict}
ROW = re.compile(r"^\| `(nt|stax|predict)\.(\w+)` \| (identical|different|missing) \|(.*)\|\s*$")


def _nt_names():
    with open(os.path.join(ROOT, "tests", "nt_fixtures", "nt_names.txt")) as f:
        return [tuple(line.split()) for line in f if line.strip() and not line.startswith("#")]


def _table():
    rows = []
    with open(os.path.join(ROOT, "docs", "nt_api.md")) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                rows.append((m.group(1), m.group(2), m.group(3), m.group(4).strip()))
    return rows


def _present(module, name, nt_module_name):
    """A public attribute of infwide's module that stands for NT's name (a submodule only
    stands for NT's submodules ``nt.stax`` / ``nt.predict``)."""
    if name.startswith("_") or not hasattr(module, name):
        return False
    obj = getattr(module, name)
    return not isinstance(obj, types.ModuleType) or nt_module_name in ("nt.stax", "nt.predict")


def test_every_nt_name_has_exactly_one_row():
    rows = [(m, n) for m, n, _, _ in _table()]
    assert len(rows) == len(set(rows)), "docs/nt_api.md lists a name twice"
    nt = set(_nt_names())
    assert len(nt) > 70
    assert sorted(nt - set(rows)) == [], "NT names missing from docs/nt_api.md"
    assert sorted(set(rows) - nt) == [], "docs/nt_api.md lists names NT does not have"


@pytest.mark.parametrize("module,name,status,note", _table(), ids=lambda v: str(v)[:40])
def test_status_matches_infwide(module, name, status, note):
    present = _present(MODULES[module], name, f"{module}.{name}")
    if status == "missing":
        assert not present, f"{module}.{name} exists in infwide: update docs/nt_api.md"
    else:
        assert present, f"{module}.{name} is marked {status} but infwide lacks it"
    if status == "different":
        assert note, f"{module}.{name}: say how it differs"
