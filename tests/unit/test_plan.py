"""plan.build: degrees, topological order, chain segments; properties on random DAGs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.model import cycles, plan, spec


def make(nodes: Iterable[str], edges: Iterable[tuple[str, str]],
         check: bool = True) -> spec.DagSpec:
    """A DAG of shell tasks; an edge (a, b) makes b depend on a."""
    nodes = list(nodes)
    ups: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        ups[b].append(a)
    data = {"id": "g", "tasks": [{"id": n, "kind": "shell", "command": "true",
                                  "upstream": ups[n]} for n in nodes]}
    return spec.build(data) if check else spec.DagSpec.model_validate(data)


def line(n: int) -> spec.DagSpec:
    names = [f"t{i}" for i in range(n)]
    return make(names, pairwise(names))


def test_diamond() -> None:
    p = plan.build(make("abcd", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]))
    assert p.dag_id == "g"
    assert p.order == ("a", "b", "c", "d")
    assert p.roots == ("a",)
    assert [p.in_degree(n) for n in "abcd"] == [0, 1, 1, 2]
    assert p.upstream["d"] == ("b", "c")
    assert p.downstream["a"] == ("b", "c")
    assert p.downstream["d"] == ()
    assert p.segments == (("a",), ("b",), ("c",), ("d",))
    assert p.chain_next == {}
    assert p.descendants("a") == ("b", "c", "d")
    assert p.descendants("b") == ("d",)
    assert p.descendants("d") == ()


def test_linear_chain_is_one_segment() -> None:
    p = plan.build(make("abcde", [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]))
    assert p.segments == (("a", "b", "c", "d", "e"),)
    assert p.segment_from("c") == ("c", "d", "e")
    assert p.released_by_chain("a") == "b"
    assert p.released_by_chain("e") is None
    assert p.roots == ("a",)


def test_fan_out_dispatches_one_segment_per_child() -> None:
    p = plan.build(make("abcdx", [("a", "b"), ("b", "c"), ("a", "d"), ("d", "x")]))
    assert p.segments == (("a",), ("b", "c"), ("d", "x"))
    assert p.released_by_chain("a") is None


def test_join_starts_a_segment() -> None:
    p = plan.build(make(["x", "y", "j", "k", "z"],
                        [("x", "j"), ("y", "j"), ("j", "k"), ("k", "z")]))
    assert p.roots == ("x", "y")
    assert p.segments == (("x",), ("y",), ("j", "k", "z"))
    assert p.released_by_chain("x") is None
    assert p.released_by_chain("y") is None
    assert p.in_degree("j") == 2


def test_parent_with_one_child_that_is_a_join_does_not_chain() -> None:
    p = plan.build(make("abc", [("a", "c"), ("b", "c")]))
    assert p.chain_next == {}


def test_isolated_nodes() -> None:
    p = plan.build(make("abc", []))
    assert p.roots == ("a", "b", "c")
    assert p.segments == (("a",), ("b",), ("c",))


@pytest.mark.parametrize("n", [1, plan.MAX_SEGMENT - 1, plan.MAX_SEGMENT, plan.MAX_SEGMENT + 1,
                               200])
def test_max_segment_caps_long_chains(n: int) -> None:
    p = plan.build(line(n))
    segments = p.segments
    assert len(segments) == math.ceil(n / plan.MAX_SEGMENT)
    assert all(len(s) == plan.MAX_SEGMENT for s in segments[:-1])
    assert [node for s in segments for node in s] == list(p.order)
    assert p.order == tuple(f"t{i}" for i in range(n))


def test_descendants_are_in_topological_order_not_discovery_order() -> None:
    # a's children are listed b then c, but b also depends on c: c must come first.
    p = plan.build(make("abc", [("a", "b"), ("a", "c"), ("c", "b")]))
    assert p.order == ("a", "c", "b")
    assert p.descendants("a") == ("c", "b")


def test_data_dependencies_count_like_upstream() -> None:
    s = spec.build({"id": "g", "tasks": [
        {"id": "a", "kind": "shell", "command": "x"},
        {"id": "b", "kind": "python", "callable": "m:f",
         "args": [{"kind": "task", "task": "a"}], "upstream": ["a"]},
    ]})
    p = plan.build(s)
    assert p.upstream["b"] == ("a",)
    assert p.downstream["a"] == ("b",)
    assert p.segments == (("a", "b"),)


def test_plan_refuses_a_cycle_even_without_spec_check() -> None:
    s = make("abc", [("a", "b"), ("b", "c"), ("c", "b")], check=False)
    with pytest.raises(errors.CycleError) as info:
        plan.build(s)
    assert set(info.value.cycle) == {"b", "c"}


# --- properties ----------------------------------------------------------------------------

@st.composite
def random_dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    """Up to 30 nodes; edges i -> j with i < j; tasks listed in a random order."""
    n = draw(st.integers(min_value=1, max_value=30))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=3 * n))
    names = [f"n{i}" for i in range(n)]
    edges = sorted({(names[min(a, b)], names[max(a, b)]) for a, b in pairs if a != b})
    listed = draw(st.permutations(names))
    return list(listed), edges


def reachable(start: str, children: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(children[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(children[n])
    return seen


@settings(max_examples=300, deadline=None)
@given(random_dags())
def test_plan_properties(graph: tuple[list[str], list[tuple[str, str]]]) -> None:
    nodes, edges = graph
    p = plan.build(make(nodes, edges))
    children: dict[str, set[str]] = {n: set() for n in nodes}
    parents: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in edges:
        children[a].add(b)
        parents[b].add(a)

    # degrees and adjacency match the edges
    for n in nodes:
        assert set(p.upstream[n]) == parents[n]
        assert set(p.downstream[n]) == children[n]
        assert p.in_degree(n) == len(parents[n])
    assert set(p.roots) == {n for n in nodes if not parents[n]}

    # the order is a topological permutation
    assert sorted(p.order) == sorted(nodes)
    pos = {n: i for i, n in enumerate(p.order)}
    for a, b in edges:
        assert pos[a] < pos[b]

    # every node in exactly one segment
    segments = p.segments
    counts = Counter(n for s in segments for n in s)
    assert set(counts) == set(nodes)
    assert set(counts.values()) == {1}

    for s in segments:
        assert 1 <= len(s) <= plan.MAX_SEGMENT
        assert p.segment_from(s[0]) == s
        for a, b in pairwise(s):
            assert children[a] == {b}          # the only child of its parent
            assert parents[b] == {a}           # the only parent of its child
            assert p.released_by_chain(a) == b
        assert p.released_by_chain(s[-1]) is None
        # maximal: the chain could not go on (no cap is reached with 30 nodes)
        last = s[-1]
        assert len(children[last]) != 1 or len(parents[next(iter(children[last]))]) != 1
        first = s[0]
        assert len(parents[first]) != 1 or len(children[next(iter(parents[first]))]) != 1

    # descendants: exactly the reachable nodes, in plan order
    for n in nodes:
        d = p.descendants(n)
        assert set(d) == reachable(n, children)
        assert list(d) == sorted(d, key=pos.__getitem__)

    assert cycles.find_cycle({n: p.upstream[n] for n in nodes}) is None


@st.composite
def graphs_with_back_edge(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]],
                                                    tuple[str, str]]:
    nodes, edges = draw(random_dags())
    children: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in edges:
        children[a].add(b)
    # a back edge j -> i where j is reachable from i closes a cycle; i -> i is a self-loop
    candidates = sorted((j, i) for i in nodes for j in reachable(i, children))
    candidates += [(i, i) for i in nodes]
    back = draw(st.sampled_from(candidates))
    return nodes, [*edges, back], back


@settings(max_examples=300, deadline=None)
@given(graphs_with_back_edge())
def test_cycles_are_reported_as_real_cycles(
        graph: tuple[list[str], list[tuple[str, str]], tuple[str, str]]) -> None:
    nodes, edges, back = graph
    with pytest.raises(errors.CycleError) as info:
        make(nodes, edges)
    cycle = info.value.cycle
    edge_set = set(edges)
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1       # a simple cycle
    pairs = list(pairwise(cycle))
    for a, b in pairs:
        assert (a, b) in edge_set                        # each step is an edge a -> b
    assert back in pairs                                 # the graph was acyclic without it
    assert " -> ".join(cycle) in str(info.value)
