"""spec.build / spec.check / spec.validate_params on plain dicts: every validation message."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.model import cycles, params, spec


def shell(task_id: str, *upstream: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "kind": "shell", "command": "true", "upstream": list(upstream),
            **extra}


def py(task_id: str, *, args: tuple[Any, ...] | list[Any] = (),
       kwargs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "kind": "python", "callable": "mod:fn", "args": list(args),
            "kwargs": kwargs or {}, **extra}


def dag(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "d", "tasks": list(tasks), **extra}


def build_error(data: dict[str, Any], **kw: Any) -> errors.DagError:
    with pytest.raises(errors.DagError) as info:
        spec.build(data, **kw)
    return info.value


# --- building ------------------------------------------------------------------------------

def test_build_returns_frozen_spec_with_defaults() -> None:
    s = spec.build(dag(shell("a"), shell("b", "a")), source="x.yaml")
    assert [t.id for t in s.tasks] == ["a", "b"]
    assert s.source == "x.yaml"
    b = s.task("b")
    assert b.upstream == ("a",)
    assert (b.retries, b.retry_backoff, b.retry_backoff_max, b.retry_jitter, b.timeout) == (
        0, 1.0, 300.0, True, None)
    assert b.max_attempts == 1
    assert s.task("a").model_copy(update={"retries": 3}).max_attempts == 4
    with pytest.raises(Exception, match="frozen"):
        b.retries = 5  # type: ignore[misc]


def test_unknown_task_lookup_raises_unknown_task() -> None:
    s = spec.build(dag(shell("a")))
    with pytest.raises(errors.UnknownTask, match="DAG 'd' has no task 'zz'") as info:
        s.task("zz")
    assert isinstance(info.value, LookupError)


def test_dependencies_merge_upstream_and_data_refs_without_repeats() -> None:
    s = spec.build(dag(
        shell("a"), shell("b"), shell("c"),
        py("t", args=[{"kind": "task", "task": "c"}, {"kind": "value", "value": 1}],
           kwargs={"x": {"kind": "task", "task": "a"}, "y": {"kind": "task", "task": "c"}},
           upstream=["b", "a"]),
    ))
    assert s.task("t").dependencies == ("b", "a", "c")


def test_args_are_discriminated_by_kind() -> None:
    s = spec.build(dag(shell("a"), py(
        "t", args=[{"kind": "task", "task": "a"}, {"kind": "param", "param": "p"},
                   {"kind": "value", "value": {"task": "a"}}]), params={"p": {}}))
    args = s.task("t").args
    assert isinstance(args[0], spec.TaskArg)
    assert isinstance(args[1], spec.ParamArg)
    assert isinstance(args[2], spec.ValueArg)
    assert args[2].value == {"task": "a"}
    assert s.task("t").dependencies == ("a",)


# --- validation errors ---------------------------------------------------------------------

def rotations(nodes: list[str]) -> set[str]:
    return {" -> ".join([*nodes[i:], *nodes[:i], nodes[i]]) for i in range(len(nodes))}


def test_cycle_names_the_nodes_on_the_cycle_in_dependency_direction() -> None:
    # a -> b -> c -> a (b depends on a, c on b, a on c); d hangs off the cycle.
    exc = build_error(dag(shell("a", "c"), shell("b", "a"), shell("c", "b"), shell("d", "a")))
    assert isinstance(exc, errors.CycleError)
    shown = " -> ".join(exc.cycle)
    assert shown in rotations(["a", "b", "c"])
    assert f"cycle: {shown}" in str(exc)
    assert "d" not in exc.cycle
    assert str(exc).startswith("DAG 'd': ")


def test_cycle_through_data_dependencies() -> None:
    exc = build_error(dag(py("a", args=[{"kind": "task", "task": "b"}]),
                          py("b", kwargs={"x": {"kind": "task", "task": "a"}})))
    assert isinstance(exc, errors.CycleError)
    assert " -> ".join(exc.cycle) in rotations(["a", "b"])


def test_self_dependency() -> None:
    exc = build_error(dag(shell("a"), shell("b", "b", line=4)), source="f.yaml")
    assert isinstance(exc, errors.CycleError)
    assert exc.cycle == ["b", "b"]
    assert str(exc) == "f.yaml:4: DAG 'd': cycle: b -> b"


def test_unknown_upstream() -> None:
    exc = build_error(dag(shell("a"), shell("b", "zzz")))
    assert str(exc) == "DAG 'd': task 'b' has unknown upstream 'zzz'"
    assert not isinstance(exc, errors.CycleError)


def test_unknown_data_upstream() -> None:
    exc = build_error(dag(py("t", args=[{"kind": "task", "task": "ghost"}])))
    assert "task 't' has unknown upstream 'ghost'" in str(exc)


def test_duplicate_task_id() -> None:
    exc = build_error(dag(shell("a"), shell("b"), shell("a", line=9)), source="f.yaml")
    assert str(exc) == "f.yaml:9: DAG 'd': duplicate task id 'a'"
    assert exc.line == 9
    assert exc.source == "f.yaml"
    assert exc.dag_id == "d"


@pytest.mark.parametrize("bad", ["1a", "a.b", "a b", "", "é", "a" * 101, "-a"])
def test_invalid_task_id(bad: str) -> None:
    exc = build_error(dag(shell(bad)))
    assert f"invalid task id {bad!r}: must match {spec.ID_PATTERN}" in str(exc)


@pytest.mark.parametrize("good", ["a", "_", "A-b_9", "a" * 100])
def test_valid_ids(good: str) -> None:
    s = spec.build({"id": good, "params": {good: {}}, "tasks": [shell(good)]})
    assert s.id == good


@pytest.mark.parametrize("bad", ["my.dag", "9lives", "with space"])
def test_invalid_dag_id(bad: str) -> None:
    exc = build_error({"id": bad, "tasks": [shell("a")]})
    assert f"invalid DAG id {bad!r}: must match {spec.ID_PATTERN}" in str(exc)


@pytest.mark.parametrize("bad", ["1st", "a.b", "x y"])
def test_invalid_param_name(bad: str) -> None:
    exc = build_error(dag(shell("a"), params={bad: {"type": "integer"}}))
    assert f"invalid param name {bad!r}" in str(exc)


def test_unknown_param_reference() -> None:
    exc = build_error(dag(py("t", kwargs={"x": {"kind": "param", "param": "nope"}}),
                          params={"yes": {}}))
    assert str(exc) == "DAG 'd': task 't' uses unknown param 'nope'"


def test_python_task_without_callable() -> None:
    exc = build_error(dag({"id": "t", "kind": "python"}))
    assert "task 't': python tasks need callable 'module:function', got None" in str(exc)


def test_python_callable_without_colon() -> None:
    exc = build_error(dag({"id": "t", "kind": "python", "callable": "mod.fn"}))
    assert "python tasks need callable 'module:function', got 'mod.fn'" in str(exc)


@pytest.mark.parametrize("command", [None, ""])
def test_shell_task_without_command(command: str | None) -> None:
    exc = build_error(dag({"id": "t", "kind": "shell", "command": command}))
    assert str(exc) == "DAG 'd': task 't': shell tasks need a command"


def test_retry_backoff_max_below_retry_backoff() -> None:
    exc = build_error(dag(shell("t", retry_backoff=10, retry_backoff_max=5)))
    assert "task 't': retry_backoff_max is below retry_backoff" in str(exc)
    # equal is fine
    assert spec.build(dag(shell("t", retry_backoff=5, retry_backoff_max=5))).tasks


def test_too_many_tasks() -> None:
    data = dag(*(shell(f"t{i}") for i in range(3)))
    exc = build_error(data, max_tasks=2)
    assert "has 3 tasks, more than the limit 2" in str(exc)
    assert len(spec.build(data, max_tasks=3).tasks) == 3


def test_no_tasks() -> None:
    assert "has no tasks" in str(build_error(dag()))


def test_non_json_literal_argument() -> None:
    exc = build_error(dag(py("t", args=[{"kind": "value", "value": {1, 2}}])))
    assert "task 't': argument {1, 2} is not JSON" in str(exc)


@pytest.mark.parametrize(("extra", "loc"), [
    ({"retries": -1}, "tasks.0.retries"),
    ({"retries": spec.MAX_RETRIES + 1}, "tasks.0.retries"),
    ({"timeout": 0}, "tasks.0.timeout"),
    ({"timeout": spec.MAX_TIMEOUT + 1}, "tasks.0.timeout"),
    ({"retry_backoff": -1}, "tasks.0.retry_backoff"),
    ({"nonsense": 1}, "tasks.0.nonsense"),
])
def test_field_errors_name_the_field_and_line(extra: dict[str, Any], loc: str) -> None:
    exc = build_error(dag(shell("t", line=3, **extra)), source="f.yaml")
    assert str(exc).startswith(f"f.yaml:3: DAG 'd': {loc}: ")
    assert exc.line == 3


def test_unknown_kind_rejected() -> None:
    exc = build_error(dag({"id": "t", "kind": "java"}))
    assert re.search(r"tasks\.0\.kind: Input should be 'python', 'shell', 'sql' or 'http'",
                     str(exc))


def test_unknown_top_level_field_rejected() -> None:
    exc = build_error(dag(shell("a"), owner="me"))
    assert "owner" in str(exc)


# --- find_cycle ----------------------------------------------------------------------------

def test_find_cycle_none_for_dag_and_ignores_unknown_nodes() -> None:
    assert cycles.find_cycle({"a": [], "b": ["a"], "c": ["a", "b", "outside"]}) is None


def test_find_cycle_returns_closed_path() -> None:
    deps = {"a": ["c"], "b": ["a"], "c": ["b"], "x": ["a"], "y": ["x"]}
    cycle = cycles.find_cycle(deps)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    for up, down in pairwise(cycle):
        assert up in deps[down]
    assert set(cycle) == {"a", "b", "c"}


# --- validate_params -----------------------------------------------------------------------

PARAMS = {
    "n": {"type": "integer"},
    "x": {"type": "number", "default": 1.5, "required": False},
    "s": {"type": "string", "default": "hi", "required": False},
    "flag": {"type": "boolean", "default": False, "required": False},
    "items": {"type": "array", "default": [], "required": False},
    "conf": {"type": "object", "default": {}, "required": False},
    "anything": {"type": "any", "default": None, "required": False},
}


@pytest.fixture
def pspec() -> spec.DagSpec:
    return spec.build(dag(shell("a"), params=PARAMS))


def test_defaults_filled(pspec: spec.DagSpec) -> None:
    assert params.validate(pspec, {"n": 3}) == {
        "n": 3, "x": 1.5, "s": "hi", "flag": False, "items": [], "conf": {}, "anything": None}


def test_given_values_kept(pspec: spec.DagSpec) -> None:
    given = {"n": 1, "x": 2, "s": "a", "flag": True, "items": [1, "b"], "conf": {"k": [1]},
             "anything": {"deep": [1, 2.5, None]}}
    assert params.validate(pspec, given) == given


def test_missing_required(pspec: spec.DagSpec) -> None:
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, None)
    assert info.value.problems == ["missing required param 'n'"]
    assert "invalid params for DAG 'd': missing required param 'n'" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", ["5", True, False, 1.5, 2.0, None, [1]])
def test_integer_rejects_non_ints(pspec: spec.DagSpec, value: Any) -> None:
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, {"n": value})
    assert info.value.problems == [
        f"param 'n' must be integer, got {type(value).__name__} {value!r}"]


@pytest.mark.parametrize("value", [1, -3, 2.5, 0.0])
def test_number_accepts_int_and_float(pspec: spec.DagSpec, value: float) -> None:
    assert params.validate(pspec, {"n": 0, "x": value})["x"] == value


@pytest.mark.parametrize(("name", "value"), [
    ("x", True), ("x", "1.5"), ("s", 5), ("flag", 1), ("flag", "true"), ("items", "a,b"),
    ("items", {"a": 1}), ("conf", [1]), ("conf", {1: "int key"}),
])
def test_wrong_types(pspec: spec.DagSpec, name: str, value: Any) -> None:
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, {"n": 0, name: value})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"param {name!r} must be ")


_OBJECT = object()


@pytest.mark.parametrize(("name", "value", "where", "bad"), [
    ("anything", {1, 2}, "", {1, 2}), ("anything", float("nan"), "", float("nan")),
    ("anything", float("inf"), "", float("inf")), ("x", float("nan"), "", float("nan")),
    ("x", float("-inf"), "", float("-inf")), ("anything", _OBJECT, "", _OBJECT),
    ("conf", {"k": {1, 2}}, "['k']", {1, 2}),
    ("items", [float("nan")], "[0]", float("nan")),
])
def test_not_json_serialisable(pspec: spec.DagSpec, name: str, value: Any, where: str,
                               bad: Any) -> None:
    """The problem names the place inside the value (a nested one too)."""
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, {"n": 0, name: value})
    assert info.value.problems == [f"param {name!r}{where} is not JSON-serialisable: {bad!r}"]


def test_unknown_param(pspec: spec.DagSpec) -> None:
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, {"n": 1, "nn": 2})
    assert info.value.problems == ["unknown param 'nn'"]


def test_every_problem_listed(pspec: spec.DagSpec) -> None:
    with pytest.raises(errors.ParamsError) as info:
        params.validate(pspec, {"zeta": 1, "alpha": 2, "s": 3, "anything": {1}})
    problems = info.value.problems
    assert problems == [
        "unknown param 'alpha'",
        "unknown param 'zeta'",
        "missing required param 'n'",
        "param 's' must be string, got int 3",
        "param 'anything' is not JSON-serialisable: {1}",
    ]
    for p in problems:
        assert p in str(info.value)


def test_no_params_dag_accepts_none_and_empty() -> None:
    s = spec.build(dag(shell("a")))
    assert params.validate(s, None) == {}
    assert params.validate(s, {}) == {}
