"""The one plan (``infwide.stax._plan``) both runners execute: requirements are values whose
laws hold (composition associative with a unit, combination commutative, associative and
idempotent, composition distributing over it), the per-layer fold equals asking each suffix
of the network directly, flattening keeps every layer in order, and no module of
``infwide.stax`` takes part in an import cycle."""
import ast
import itertools
import pathlib

import pytest

from infwide import models, stax
from infwide.stax._plan import IDENTITY, Needs, chain_needs, flatten_layers, make_plan, \
    needs_of, requirements

ALL = [Needs(a, b) for a in (False, True) for b in (False, True)]   # every map bool -> bool


@pytest.mark.parametrize("a, b, c", list(itertools.product(ALL, repeat=3)))
def test_composition_is_associative_and_combination_distributes(a, b, c):
    assert (a >> b) >> c == a >> (b >> c)
    assert (a | b) | c == a | (b | c)
    assert (a | b) >> c == (a >> c) | (b >> c)


@pytest.mark.parametrize("a, b", list(itertools.product(ALL, repeat=2)))
def test_combination_commutes_and_composition_is_function_composition(a, b):
    assert a | b == b | a
    for out_full in (False, True):
        assert (a >> b)(out_full) == a(b(out_full))
        assert (a | b)(out_full) == (a(out_full) or b(out_full))


@pytest.mark.parametrize("a", ALL)
def test_units_and_idempotence(a):
    assert a | a == a
    assert IDENTITY >> a == a == a >> IDENTITY


def _nets():
    conv = lambda: stax.Conv(2, (3, 3), padding="SAME")
    return {
        "cnn_flatten": models.CNN(2, "flatten", channels=2),
        "cnn_gap": models.CNN(2, "gap", channels=2),
        "myrtle": models.Myrtle(5),
        "wrn": models.WideResNet(10, 1),
        "repeat": stax.serial(conv(), stax.repeat(stax.serial(stax.Relu(), conv()), 3),
                              stax.Flatten()),
        "pool_then_flatten": stax.serial(conv(), stax.AvgPool((2, 2)), stax.Relu(),
                                         stax.Flatten(), stax.Dense(1)),
    }


@pytest.mark.parametrize("name", sorted(_nets()))
@pytest.mark.parametrize("out_full", [False, True])
def test_requirements_equal_asking_each_suffix(name, out_full):
    net = _nets()[name]
    layers = flatten_layers(net)
    reqs = requirements(layers, out_full)
    for i in range(len(layers)):
        suffix = layers[i + 1:]
        expect = out_full if not suffix else stax.serial(*suffix).input_needs_full(out_full)
        assert reqs[i] == expect, (i, layers[i].name)
    assert chain_needs(layers) == needs_of(net)
    plan = make_plan(net, out_full)
    assert plan.layers == tuple(layers) and plan.reqs == tuple(reqs)
    assert plan.ops == tuple(l.fused_op() for l in layers)


def test_flatten_unfolds_serial_and_repeat_and_drops_identity():
    a, b, c = stax.Dense(1), stax.Relu(), stax.Dense(2)
    net = stax.serial(a, stax.Identity(), stax.repeat(stax.serial(b, c), 2),
                      stax.serial(stax.serial(a)))
    assert flatten_layers(net) == [a, b, c, b, c, a]
    par = stax.parallel(stax.serial(a, b), stax.Identity())
    assert flatten_layers(par) == [par]


def test_gap_needs_full_and_flatten_needs_diagonal():
    assert needs_of(stax.GlobalAvgPool()) == Needs(True, True)
    assert needs_of(stax.Flatten()) == Needs(False, False)
    assert needs_of(stax.Relu()) == IDENTITY
    assert needs_of(models.CNN(2, "flatten", channels=2)) == Needs(False, False)
    assert needs_of(models.CNN(2, "gap", channels=2)) == Needs(True, True)


def _stax_imports():
    """Edges between modules of infwide/stax from every import statement (module level and
    inside functions)."""
    root = pathlib.Path(stax.__file__).parent
    edges = {}
    for path in root.glob("*.py"):
        mod = path.stem
        tree = ast.parse(path.read_text())
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("infwide.stax."):
                out.add(node.module.split(".")[2])
        edges[mod] = out - {mod}
    return edges


def _visit(edges, state, m, path):
    """Depth-first search; fails on an edge back to a module still open (a cycle)."""
    state[m] = "open"
    for n in sorted(edges[m]):
        if n == "__init__" or n not in edges:
            continue
        assert state.get(n) != "open", "import cycle: " + " -> ".join(path + [m, n])
        if n not in state:
            _visit(edges, state, n, path + [m])
    state[m] = "done"


def test_no_import_cycle_inside_stax():
    edges = _stax_imports()
    assert {"combinators", "_fusion", "_gpu_plan", "_plan"} <= set(edges)
    assert "_fusion" in edges["combinators"]   # the test sees function-level imports too
    state = {}
    for m in sorted(edges):
        if m != "__init__" and m not in state:
            _visit(edges, state, m, [])


def test_the_cycle_search_finds_a_cycle():
    with pytest.raises(AssertionError, match="import cycle: a -> b -> a"):
        _visit({"a": {"b"}, "b": {"a"}}, {}, "a", [])
