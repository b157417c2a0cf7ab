"""graph.layout and graph.render_svg: layers, order, spacing, crossings, escaping, speed."""

from __future__ import annotations

import random
import re
import time
from itertools import pairwise
from xml.etree import ElementTree

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.api import graph

SVG = "{http://www.w3.org/2000/svg}"


def lattice(width: int, depth: int) -> dict[str, list[str]]:
    up: dict[str, list[str]] = {}
    for i in range(depth):
        for j in range(width):
            up[f"n{i}_{j}"] = [f"n{i - 1}_{k}" for k in range(width)] if i else []
    return up


def no_overlaps(lay: graph.Layout) -> bool:
    for row in lay.layers:
        ys = sorted(lay.nodes[n].y for n in row)
        if any(b - a < graph.NODE_H for a, b in pairwise(ys)):
            return False
    return True


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 40))
    names = [f"t{i}" for i in range(n)]
    up: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        up[name] = sorted(set(draw(st.lists(st.sampled_from(names[:i]), max_size=4)))) if i else []
    return up


def test_layers_are_longest_paths() -> None:
    up = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": []}
    assert graph.layers_of(list(up), up) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}
    lay = graph.layout(list(up), up)
    assert lay.layers == (("a", "e"), ("b",), ("c",), ("d",))
    assert lay.nodes["d"].x > lay.nodes["c"].x > lay.nodes["b"].x > lay.nodes["a"].x


@settings(max_examples=80, deadline=None)
@given(dags())
def test_every_edge_points_right_and_nodes_never_overlap(up: dict[str, list[str]]) -> None:
    lay = graph.layout(list(up), up)
    assert set(lay.nodes) == set(up)
    assert no_overlaps(lay)
    assert len(lay.edges) == sum(len(u) for u in up.values())
    for e in lay.edges:
        xs = [x for x, _ in e.points]
        assert xs == sorted(xs)
        assert e.points[0] == (lay.nodes[e.source].x + graph.NODE_W,
                               lay.nodes[e.source].y + graph.NODE_H / 2)
        assert e.points[-1] == (lay.nodes[e.target].x, lay.nodes[e.target].y + graph.NODE_H / 2)
    for box in lay.nodes.values():
        assert box.x >= 0 and box.x + graph.NODE_W <= lay.width
        assert box.y >= 0 and box.y + graph.NODE_H <= lay.height


def test_a_long_edge_goes_around_the_nodes_between() -> None:
    # a -> b -> c -> d and a -> d: the long edge gets a dummy point in layers 1 and 2
    up = {"a": [], "b": ["a"], "c": ["b"], "d": ["c", "a"]}
    lay = graph.layout(list(up), up)
    long = next(e for e in lay.edges if (e.source, e.target) == ("a", "d"))
    assert len(long.points) == 2 + 2 * 2
    for x, y in long.points[1:-1]:
        for n in ("b", "c"):
            box = lay.nodes[n]
            inside = box.x <= x <= box.x + graph.NODE_W and box.y <= y <= box.y + graph.NODE_H
            assert not inside


def test_barycentre_ordering_removes_avoidable_crossings() -> None:
    # given in an order that crosses: a1 -> b2, a2 -> b1 (and so on); a planar order exists
    up = {"a1": [], "a2": [], "a3": [], "b3": ["a1"], "b1": ["a3"], "b2": ["a2"],
          "c1": ["b1"], "c3": ["b3"], "c2": ["b2"]}
    lay = graph.layout(list(up), up)
    assert lay.crossings == 0
    # and then the tree is drawn straight: each child level with its only parent
    for e in lay.edges:
        assert lay.nodes[e.source].y == lay.nodes[e.target].y


def test_crossings_fewer_than_the_given_order() -> None:
    rnd = random.Random(7)
    names = [f"t{i}" for i in range(120)]
    up = {n: rnd.sample(names[max(0, i - 15):i], min(i, rnd.randint(1, 3)))
          for i, n in enumerate(names)}
    lay = graph.layout(names, up)
    assert graph.layout(names, up) == lay  # deterministic for a given input
    sweeps, graph.SWEEPS = graph.SWEEPS, 0
    try:
        unswept = graph.layout(names, up)  # the order as given, dummies at the bottom
    finally:
        graph.SWEEPS = sweeps
    assert lay.crossings < unswept.crossings / 2


def test_a_fan_in_is_centred_on_its_parents() -> None:
    up = {"src": [], **{f"w{i}": ["src"] for i in range(9)}, "join": [f"w{i}" for i in range(9)]}
    lay = graph.layout(list(up), up)
    ws = [lay.nodes[f"w{i}"].y for i in range(9)]
    middle = (min(ws) + max(ws)) / 2
    assert abs(lay.nodes["join"].y - middle) < 1
    assert abs(lay.nodes["src"].y - middle) < 1


def test_big_graphs_lay_out_quickly() -> None:
    # not a timing assertion on the suite's machine: a bound two orders of magnitude out,
    # to catch a quadratic step (the 500-wide fan-out was the slow case before)
    up = {"src": [], **{f"w{i}": ["src"] for i in range(500)},
          "join": [f"w{i}" for i in range(500)]}
    for g in (up, lattice(10, 10), lattice(15, 15)):
        start = time.perf_counter()
        lay = graph.layout(list(g), g)
        graph.render_svg(lay, {})
        assert time.perf_counter() - start < 5.0
        assert no_overlaps(lay)


def test_svg_parses_and_carries_the_dom_contract() -> None:
    up = {"extract": [], "square": ["extract"], "total": ["square"]}
    lay = graph.layout(list(up), up)
    svg = graph.render_svg(lay, {
        "extract": graph.NodeView(state="success", href="#task-extract"),
        "square": graph.NodeView(state="running", counts="8/10", mapped=True),
    })
    root = ElementTree.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("class") == "graph"
    nodes = {g.get("data-task-id"): g for g in root.iter(f"{SVG}g")
             if "node" in (g.get("class") or "").split()}
    assert set(nodes) == {"extract", "square", "total"}
    assert nodes["extract"].get("data-state") == "success"
    assert nodes["total"].get("data-state") == "none"
    assert nodes["square"].get("class") == "node mapped"
    texts = {t.get("class"): t.text for t in nodes["square"].iter(f"{SVG}text")}
    assert texts == {"label": "square", "counts": "8/10"}
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert [(p.get("data-from"), p.get("data-to")) for p in edges] == [
        ("extract", "square"), ("square", "total")]


def test_every_value_in_the_svg_is_escaped() -> None:
    hostile = '"><script>alert(1)</script>&'
    up = {hostile: [], "b": [hostile]}
    lay = graph.layout(list(up), up)
    svg = str(graph.render_svg(lay, {hostile: graph.NodeView(
        state=hostile, counts=hostile, href='javascript:"><x')}, label=hostile))
    assert "<script" not in svg
    assert '"><x' not in svg
    root = ElementTree.fromstring(svg)  # still well-formed XML
    ids = [g.get("data-task-id") for g in root.iter(f"{SVG}g") if g.get("data-task-id")]
    assert hostile in ids


def test_long_ids_are_cut_on_the_node_and_whole_in_the_tooltip() -> None:
    long = "a" * 100
    lay = graph.layout([long], {long: []})
    root = ElementTree.fromstring(str(graph.render_svg(lay, {})))
    label = next(t for t in root.iter(f"{SVG}text") if t.get("class") == "label")
    assert label.text is not None and len(label.text) == graph.LABEL_CHARS
    title = next(root.iter(f"{SVG}title")).text or ""
    assert long in title


def test_paths_are_numbers_only() -> None:
    up = lattice(3, 3)
    lay = graph.layout(list(up), up)
    for e in lay.edges:
        d = graph._path(e.points)
        assert re.fullmatch(r"[MLC0-9., -]+", d)


def test_empty_graph() -> None:
    lay = graph.layout([], {})
    assert lay.nodes == {} and lay.edges == ()
    ElementTree.fromstring(str(graph.render_svg(lay, {})))
