"""The package's import graph is layered: no cycles, no private name used across packages.

Every module of ``infwide/`` and ``kernels/`` (installed as ``infwide.kernels``, see
setup.cfg ``package_dir``) is parsed with ``ast``; relative imports are resolved and imports
inside functions count too (a lazy import hides a cycle, it does not remove it).
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"infwide": ROOT / "infwide", "infwide.kernels": ROOT / "kernels"}

# The two cycles inside infwide.stax, removed by the planner change (helper "eng": one
# planner in infwide/stax/_plan.py). Each is a closed path of imports whose first step is the
# function-level import that closes it; the test ignores that one import and fails if any
# other cycle remains. The lead deletes this list after the merge.
KNOWN_CYCLES_REMOVED_BY_THE_PLANNER_CHANGE = [
    ("infwide.stax.combinators", "infwide.stax._fusion", "infwide.stax.combinators"),
    ("infwide.stax.layer", "infwide.stax._gpu_plan", "infwide.stax.combinators",
     "infwide.stax.layer"),
]
# A cycle in helper "duals"' files (kernels/activations: ``_launch`` imports ``_cuda`` inside
# a function, ``_cuda`` imports ``_launch``), left to that change; same form as above.
KNOWN_CYCLES_IN_THE_DUALS_FILES = [
    ("infwide.kernels.activations._launch", "infwide.kernels.activations._cuda",
     "infwide.kernels.activations._launch"),
]
KNOWN_CYCLES = KNOWN_CYCLES_REMOVED_BY_THE_PLANNER_CHANGE + KNOWN_CYCLES_IN_THE_DUALS_FILES


def _modules():
    """{dotted module name: path} for every module of the two source trees."""
    out = {}
    for pkg, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([pkg] + parts)
            if pkg == "infwide" and name.startswith("infwide.kernels"):
                continue   # not a real path: infwide/kernels does not exist
            out[name] = path
    return out


MODULES = _modules()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _resolve(importer, level, module):
    """The absolute dotted name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(name):
    """[(target module, imported name or None, line)] of every import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, node.level, node.module)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES
                           else (target, a.name, node.lineno))
    return [(t, n, line) for t, n, line in out if t.split(".")[0] == "infwide"]


def _owner(name):
    """The nearest module of ours that ``name`` is or lies in (``infwide.x.y`` -> ``infwide.x``
    when ``y`` is not a module)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _graph():
    return {name: {_owner(t) for t, _, _ in _imports(name)} - {name} for name in MODULES}


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def _a_cycle(graph, comp):
    """The shortest closed path through the component's first module, for the message."""
    start = min(comp)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & comp):
            if w == start:
                return " -> ".join(path + [start])
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return " <-> ".join(sorted(comp))


def _package(module):
    return module if _is_package(module) else module.rpartition(".")[0]


def _private_owner(dotted):
    """The package that owns the first private part of ``dotted`` (or None): the private
    module ``a.b._c`` (or name ``a.b._c``) belongs to ``a.b``."""
    parts = dotted.split(".")
    for i, p in enumerate(parts):
        if p.startswith("_") and not (p.startswith("__") and p.endswith("__")):
            owner = ".".join(parts[:i])
            return owner if owner in MODULES and _is_package(owner) else \
                _package(_owner(owner))
    return None


def test_the_source_trees_are_found():
    assert "infwide.stax.layer" in MODULES and "infwide.kernels.fused.engine" in MODULES
    assert "infwide.stax.combinators" in _graph()["infwide.stax"]


def test_the_cycle_finder_can_fail():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (comp,) = _cycles(graph)
    assert comp == {"a", "b", "c"}
    assert _a_cycle(graph, comp) == "a -> b -> c -> a"


def test_the_known_cycles_are_still_there():
    """A known cycle that is gone must leave the list (so the list never hides a new one)."""
    graph = _graph()
    for path in KNOWN_CYCLES:
        missing = [f"{a} -> {b}" for a, b in zip(path, path[1:]) if b not in graph[a]]
        assert not missing, f"known cycle {path} is gone ({missing}): delete it from the list"


def test_no_import_cycles():
    graph = _graph()
    for path in KNOWN_CYCLES:
        graph[path[0]].discard(path[1])
    found = _cycles(graph)
    assert not found, "import cycles: " + "; ".join(_a_cycle(graph, c) for c in found)


def _top(module):
    """The first-level package (``infwide.stax``) or module (``infwide.guards``) of ``module``."""
    return ".".join(module.split(".")[:2])


def test_no_cycles_between_packages():
    """Between infwide's sub-packages and top-level modules (e.g. training <-> empirical), not
    only between modules."""
    graph = {}
    for name, targets in _graph().items():
        graph.setdefault(_top(name), set()).update(_top(t) for t in targets)
    for node, targets in graph.items():
        targets.discard(node)
    found = _cycles(graph)
    assert not found, "import cycles between packages: " + \
        "; ".join(_a_cycle(graph, c) for c in found)


def test_no_private_name_imported_across_packages():
    bad = []
    for name in sorted(MODULES):
        here = _package(name)
        for target, imported, line in _imports(name):
            dotted = target if imported is None else f"{target}.{imported}"
            owner = _private_owner(dotted)
            if owner is not None and here != owner and not here.startswith(owner + "."):
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{line} imports {dotted}")
    assert not bad, "private names imported from another package:\n" + "\n".join(bad)


@pytest.mark.parametrize("importer,level,module,expected", [
    ("infwide.stax.layer", 1, "kernel", "infwide.stax.kernel"),
    ("infwide.stax.layer", 2, "kernel", "infwide.kernel"),
    ("infwide.stax", 1, "layer", "infwide.stax.layer"),
    ("infwide.kernels.fused.engine", 2, "_jit", "infwide.kernels._jit"),
])
def test_relative_imports_resolve(importer, level, module, expected):
    assert _resolve(importer, level, module) == expected
