"""Python DAGs: @dag / @task wiring, params from the signature, and Dag.test."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from orchestrator import Dag, Output, dag, errors, task
from orchestrator.model import params, spec
from tests.unit.authoring_tasks import (
    CALLS,
    add,
    configured,
    double,
    gather,
    mark,
    nameless,
)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def here() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


# --- plain calls ---------------------------------------------------------------------------

def test_task_outside_a_dag_runs_plainly() -> None:
    assert add(2, 3) == 5
    assert add(2, y=5) == 7
    assert double(add(1, 1)) == 4
    assert CALLS == ["add", "add", "add", "double"]
    assert add.__name__ == "add"
    assert add.__doc__ is None
    assert add.callable_path == "tests.unit.authoring_tasks:add"


def test_dag_cannot_be_called_directly() -> None:
    @dag
    def d() -> None:
        add(1)

    with pytest.raises(errors.DagError, match=r"DAG 'd' is not called directly"):
        d()


# --- wiring --------------------------------------------------------------------------------

def test_data_passing_by_return_value() -> None:
    @dag
    def pipeline() -> None:
        s = add(1, 2)
        double(s)
        add(s, y=double(5))

    s = pipeline.spec
    assert isinstance(pipeline, Dag)
    assert pipeline.id == "pipeline"
    assert [t.id for t in s.tasks] == ["add", "double", "double__1", "add__1"]
    assert s.task("add").args == (spec.ValueArg(value=1), spec.ValueArg(value=2))
    assert s.task("double").args == (spec.TaskArg(task="add"),)
    assert s.task("double__1").args == (spec.ValueArg(value=5),)
    assert s.task("add__1").args == (spec.TaskArg(task="add"),)
    assert s.task("add__1").kwargs == {"y": spec.TaskArg(task="double__1")}
    assert s.task("add__1").dependencies == ("add", "double__1")
    assert all(t.upstream == () for t in s.tasks)
    assert s.task("add").callable == "tests.unit.authoring_tasks:add"
    assert CALLS == []  # building runs no task


def test_task_call_returns_output() -> None:
    seen: list[Any] = []

    @dag
    def d() -> None:
        seen.append(add(1))

    assert len(seen) == 1
    assert isinstance(seen[0], Output)
    assert seen[0].task_id == "add"
    assert repr(seen[0]) == "Output('add')"
    assert d.spec.tasks[0].id == "add"


def test_rshift_orders_without_data() -> None:
    @dag
    def d() -> None:
        a, b, c = mark("a"), mark("b"), mark("c")
        a >> b >> c

    s = d.spec
    assert s.task("mark").upstream == ()
    assert s.task("mark__1").upstream == ("mark",)
    assert s.task("mark__2").upstream == ("mark__1",)
    assert s.task("mark__1").args == (spec.ValueArg(value="b"),)


def test_list_rshift_fan_in_and_fan_out() -> None:
    @dag
    def d() -> None:
        a, b, c, e, f = (mark(x) for x in "abcef")
        [a, b] >> c
        c >> [e, f]
        c >> e  # repeated edge is kept once

    s = d.spec
    assert s.task("mark__2").upstream == ("mark", "mark__1")
    assert s.task("mark__3").upstream == ("mark__2",)
    assert s.task("mark__4").upstream == ("mark__2",)


def test_lshift_both_ways() -> None:
    @dag
    def d() -> None:
        a, b, c, e = (mark(x) for x in "abce")
        a << b
        [c, e] << a

    s = d.spec
    assert s.task("mark").upstream == ("mark__1",)
    assert s.task("mark__2").upstream == ("mark",)
    assert s.task("mark__3").upstream == ("mark",)


def test_rshift_rejects_non_outputs() -> None:
    with pytest.raises(errors.DagError, match=r">> and << take task outputs, got 5"):
        @dag
        def d() -> None:
            mark("a") >> [mark("b"), 5]  # type: ignore[list-item]


def test_repeated_task_gets_numbered_ids() -> None:
    @dag
    def d() -> None:
        for i in range(4):
            add(i)

    assert [t.id for t in d.spec.tasks] == ["add", "add__1", "add__2", "add__3"]
    assert [t.args[0].value for t in d.spec.tasks] == [0, 1, 2, 3]  # type: ignore[union-attr]


def test_numbered_id_skips_ids_taken_by_overrides() -> None:
    @dag
    def d() -> None:
        add.override(task_id="add__1")(10)
        add(1)
        add(2)

    ids = [t.id for t in d.spec.tasks]
    assert len(ids) == 3 == len(set(ids))
    assert d.spec.task("add__1").args == (spec.ValueArg(value=10),)
    assert {t.args[0].value for t in d.spec.tasks} == {10, 1, 2}  # type: ignore[union-attr]


def test_override_task_id_and_options() -> None:
    @dag
    def d() -> None:
        first = configured.override(task_id="first", retries=5)(1)
        configured(first)
        nameless()
        add.override(queue="special")(1)

    s = d.spec
    first = s.task("first")
    assert (first.retries, first.retry_backoff, first.timeout, first.queue) == (5, 2.0, 10, "q1")
    assert first.callable == "tests.unit.authoring_tasks:configured"
    plain = s.task("configured")
    assert (plain.retries, plain.retry_backoff, plain.timeout, plain.queue) == (3, 2.0, 10, "q1")
    assert plain.args == (spec.TaskArg(task="first"),)
    assert s.task("renamed_by_decorator").callable == "tests.unit.authoring_tasks:nameless"
    assert s.task("add").queue == "special"
    assert configured.options["retries"] == 3  # override does not change the original


def test_unknown_task_options_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"unknown task option\(s\) \['bogus'\]"):
        add.override(bogus=1)
    with pytest.raises(errors.DagError, match=r"unknown task option\(s\) \['retry', 'tmeout'\]"):
        task(retry=1, tmeout=3)  # type: ignore[call-overload]


def test_invalid_option_values_rejected_at_build() -> None:
    with pytest.raises(errors.DagError, match=r"tasks\.0\.retries"):
        @dag
        def d() -> None:
            add.override(retries=-1)(1)


def test_params_from_signature() -> None:
    @dag(id="with_params", description="explicit")
    def d(n: int, name: str = "x", ratio: float = 0.5, flag: bool = False,
          items: list[int] | None = None, conf: dict[str, Any] | None = None,
          seq: list[str] = ["a"],  # noqa: B006 - a default is only read
          untyped=3) -> None:  # type: ignore[no-untyped-def]
        add(n)

    s = d.spec
    assert s.id == "with_params"
    assert s.description == "explicit"
    got = {k: (p.type, p.required, p.default) for k, p in s.params.items()}
    assert got == {
        "n": ("integer", True, None),
        "name": ("string", False, "x"),
        "ratio": ("number", False, 0.5),
        "flag": ("boolean", False, False),
        "items": ("any", False, None),
        "conf": ("any", False, None),
        "seq": ("array", False, ["a"]),
        "untyped": ("any", False, 3),
    }
    assert s.task("add").args == (spec.ParamArg(param="n"),)
    assert params.validate(s, {"n": 1})["ratio"] == 0.5
    with pytest.raises(errors.ParamsError, match="param 'n' must be integer"):
        params.validate(s, {"n": "1"})


def test_description_defaults_to_docstring() -> None:
    @dag
    def documented() -> None:
        """Does things.

        In detail."""
        add(1)

    assert documented.spec.description == "Does things.\n\nIn detail."


def test_param_passed_as_kwarg() -> None:
    @dag
    def d(a: int, b: int = 2) -> None:
        add(a, y=b)

    t = d.spec.task("add")
    assert t.args == (spec.ParamArg(param="a"),)
    assert t.kwargs == {"y": spec.ParamArg(param="b")}


def test_literal_args() -> None:
    @dag
    def d() -> None:
        gather(1, "two", [3, {"four": None}], 5.5, True, k={"nested": [1, 2]})

    t = d.spec.task("gather")
    assert [a.value for a in t.args] == [  # type: ignore[union-attr]
        1, "two", [3, {"four": None}], 5.5, True]
    assert t.kwargs == {"k": spec.ValueArg(value={"nested": [1, 2]})}
    assert t.dependencies == ()


def test_output_inside_a_list_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"task 'gather': pass task outputs and params "
                                              r"as direct arguments, not inside lists or dicts"):
        @dag
        def d() -> None:
            gather([add(1), 2])


@pytest.mark.parametrize("wrap", [lambda o: {"k": o}, lambda o: (o,), lambda o: [[o]]])
def test_refs_inside_containers_rejected(wrap: Any) -> None:
    with pytest.raises(errors.DagError, match="not inside lists or dicts"):
        @dag
        def d(p: int) -> None:
            gather(wrap(p))


def test_non_json_literal_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"argument \{1, 2\} is not JSON"):
        @dag
        def d() -> None:
            gather({1, 2})


def test_non_json_param_default_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"default of param 'p' is not JSON"):
        @dag
        def d(p: Any = object()) -> None:  # noqa: B008
            add(1)


def test_bad_call_arguments_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"task 'double' called with bad arguments"):
        @dag
        def d() -> None:
            double(1, 2)


def test_var_args_dag_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"take named params, not \*args"):
        @dag
        def d(*args: Any) -> None:
            add(1)


def test_branching_on_output_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"output of task 'add' is only known at run time"):
        @dag
        def d() -> None:
            if add(1):
                double(1)


def test_output_of_another_dag_rejected() -> None:
    leaked: list[Output] = []

    @dag
    def one() -> None:
        leaked.append(add(1))

    with pytest.raises(errors.DagError, match=r"task 'add' belongs to another DAG"):
        @dag
        def two() -> None:
            double(leaked[0])

    with pytest.raises(errors.DagError, match=r"task 'add' belongs to another DAG"):
        @dag
        def three() -> None:
            double(1) >> leaked[0]


def test_cycle_via_ordering() -> None:
    with pytest.raises(errors.CycleError) as info:
        @dag
        def d() -> None:
            a, b, c = mark("a"), mark("b"), mark("c")
            a >> b >> c >> a

    valid = {"mark -> mark__1 -> mark__2 -> mark", "mark__1 -> mark__2 -> mark -> mark__1",
             "mark__2 -> mark -> mark__1 -> mark__2"}
    assert " -> ".join(info.value.cycle) in valid
    assert info.value.dag_id == "d"


def test_self_dependency_names_source_line() -> None:
    lines: list[int] = []
    with pytest.raises(errors.CycleError) as info:
        @dag
        def d() -> None:
            a = mark("a"); lines.append(here())  # noqa: E702
            a >> a

    assert info.value.cycle == ["mark", "mark"]
    source = inspect.getsourcefile(test_self_dependency_names_source_line)
    assert str(info.value) == f"{source}:{lines[0]}: DAG 'd': cycle: mark -> mark"


def test_task_lines_recorded() -> None:
    lines: list[int] = []

    @dag
    def d() -> None:
        add(1); lines.append(here())  # noqa: E702
        double(2); lines.append(here())  # noqa: E702

    assert [t.line for t in d.spec.tasks] == lines
    assert d.spec.source == inspect.getsourcefile(test_task_lines_recorded)


def test_invalid_ids_rejected() -> None:
    with pytest.raises(errors.DagError, match=r"invalid DAG id 'bad\.id'"):
        @dag(id="bad.id")
        def d() -> None:
            add(1)

    with pytest.raises(errors.DagError, match=r"invalid task id 'has space'"):
        @dag
        def e() -> None:
            add.override(task_id="has space")(1)


def test_empty_dag_rejected() -> None:
    with pytest.raises(errors.DagError, match="has no tasks"):
        @dag
        def d() -> None:
            pass
