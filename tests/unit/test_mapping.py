"""Mapped tasks in the spec, the plan, both syntaxes and Dag.test (pure: no services)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import context, dag, errors, task
from orchestrator.authoring import yaml_dags
from orchestrator.model import plan, spec


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def scale(x: int, factor: int = 1) -> int:
    return x * factor


@task
def summed(xs: list[int]) -> int:
    return sum(xs)


@task
def who(x: int) -> str:
    return f"{context().task_id}:{x}"


@dag(id="mapped")
def mapped(n: int = 4, factor: int = 10) -> None:
    summed(scale.override(max_active=2).map(numbers(n), factor=factor))


def _task(**fields: Any) -> dict[str, Any]:
    return {"kind": "python", "callable": "m:f", **fields}


def _build(*tasks: dict[str, Any]) -> spec.DagSpec:
    return spec.build({"id": "d", "tasks": list(tasks)})


def test_map_in_a_dag_body_is_an_item_argument_and_a_dependency() -> None:
    s = mapped.spec
    t = s.task("scale")
    assert t.args[0] == spec.ItemArg(task="numbers")
    assert t.kwargs["factor"] == spec.ParamArg(param="factor")
    assert (t.map_over, t.max_active, t.dependencies, t.data_from) == (
        "numbers", 2, ("numbers",), ())
    assert s.task("summed").data_from == ("scale",)
    assert s.task("scale[7]") is t  # an instance's id gives its mapped task
    with pytest.raises(errors.UnknownTask):
        s.task("summed[0]")  # summed is not mapped


def test_dag_test_runs_each_item_in_order() -> None:
    assert mapped.test(n=4, factor=10) == {"numbers": [0, 1, 2, 3],
                                           "scale": [0, 10, 20, 30], "summed": 60}
    assert mapped.test(n=0) == {"numbers": [], "scale": [], "summed": 0}

    @dag(id="ids")
    def ids() -> None:
        who.map(numbers(2))

    assert ids.test()["who"] == ["who[0]:0", "who[1]:1"]


def test_instance_ids_round_trip() -> None:
    assert spec.map_instance_id("sq", 12) == "sq[12]"
    assert spec.split_task_id("sq[12]") == ("sq", 12)
    for plain in ("sq", "sq[", "sq[x]", "sq]", "sq[-1]"):
        assert spec.split_task_id(plain)[1] is None


def test_a_mapped_task_starts_no_chain_but_can_end_one() -> None:
    p = plan.build(mapped.spec)
    assert p.map_over == {"scale": "numbers"}
    assert p.chain_next == {"numbers": "scale"}


def test_yaml_item_argument() -> None:
    d = yaml_dags.load_text("""
id: ymap
tasks:
  - {id: a, python: "m:a"}
  - {id: b, python: "m:b", args: [{item: a}], max_active: 3}
""")
    assert d.task("b").args == (spec.ItemArg(task="a"),)
    assert d.task("b").max_active == 3


@pytest.mark.parametrize(("tasks", "message"), [
    ([_task(id="a"), _task(id="b", args=[{"kind": "item", "task": "a"},
                                         {"kind": "item", "task": "a"}])],
     "maps over 2 lists"),
    ([_task(id="a"), {"id": "b", "kind": "shell", "command": "true",
                      "args": [{"kind": "item", "task": "a"}]}],
     "a shell task cannot be mapped"),
    ([_task(id="a"), _task(id="b", branch=True, args=[{"kind": "item", "task": "a"}])],
     "a mapped task cannot branch"),
    ([_task(id="a", max_active=2)], "maps over nothing"),
    ([_task(id="b", args=[{"kind": "item", "task": "nope"}])], "unknown upstream 'nope'"),
    ([_task(id="a", args=[{"kind": "item", "task": "a"}])], "cycle"),
])
def test_bad_mappings_are_rejected(tasks: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(errors.DagError, match=message):
        _build(*tasks)


def test_max_active_must_be_positive() -> None:
    with pytest.raises(errors.DagError, match="max_active"):
        _build(_task(id="a"), _task(id="b", max_active=0,
                                    args=[{"kind": "item", "task": "a"}]))


def test_map_needs_an_upstream_output() -> None:
    with pytest.raises(errors.DagError, match="map\\(\\) takes an upstream task's output"):
        @dag(id="bad")
        def bad() -> None:
            scale.map([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(errors.DagError, match="inside a @dag function"):
        scale.map(None)  # type: ignore[arg-type]
