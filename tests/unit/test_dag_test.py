"""``Dag.test``: a DAG run in this process, in dependency order, for authors' tests."""

from __future__ import annotations

import uuid

import pytest

from orchestrator import context, dag, errors, task
from tests.unit.authoring_tasks import CALLS, add, double, explode, gather, mark, whoami


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def test_dag_test_runs_in_process_and_returns_results() -> None:
    @dag
    def pipeline(n: int = 3) -> None:
        s = add(n, 1)
        double(s)
        add(s, y=double(10))

    assert pipeline.test(n=4) == {"add": 5, "double": 10, "double__1": 20, "add__1": 25}
    assert pipeline.test() == {"add": 4, "double": 8, "double__1": 20, "add__1": 24}
    assert CALLS.count("add") == 4


def test_dag_test_follows_ordering_edges() -> None:
    @dag
    def d() -> None:
        first, second, third = mark("first"), mark("second"), mark("third")
        third >> second >> first

    result = d.test()
    assert CALLS == ["third", "second", "first"]
    assert list(result) == ["mark__2", "mark__1", "mark"]


def test_dag_test_varargs_task_and_context() -> None:
    @dag
    def ctx_dag(label: str = "L") -> None:
        gather(add(1, 1), label, key=whoami())

    result = ctx_dag.test()
    assert result["whoami"] == ["ctx_dag", "whoami", 1, True, {"label": "L"}]
    assert result["gather"] == {"parts": [2, "L"],
                                "named": {"key": ["ctx_dag", "whoami", 1, True,
                                                  {"label": "L"}]}}


def test_dag_test_validates_params() -> None:
    @dag
    def d(n: int) -> None:
        add(n)

    with pytest.raises(errors.ParamsError, match="missing required param 'n'"):
        d.test()
    with pytest.raises(errors.ParamsError, match="unknown param 'm'"):
        d.test(n=1, m=2)
    assert CALLS == []


def test_dag_test_propagates_task_exceptions() -> None:
    @dag
    def d() -> None:
        explode() >> mark("after")

    with pytest.raises(RuntimeError, match="task failed on purpose"):
        d.test()
    assert CALLS == []


def test_context_outside_a_task_raises() -> None:
    with pytest.raises(errors.OrchestratorError, match="only available inside a task"):
        context()


@task(branch=True)
def pick_branch(which: str) -> str:
    return which


@task
def side_branch() -> str:
    return "ran"


@task(trigger_rule="none_failed")
def after_branches() -> str:
    return "after"


def test_dag_test_follows_branches_and_trigger_rules() -> None:
    @dag(id=f"branch_{uuid.uuid4().hex[:6]}")
    def d(which: str = "a") -> None:
        p = pick_branch(which)
        a, b = side_branch.override(task_id="a")(), side_branch.override(task_id="b")()
        p >> [a, b]
        [a, b] >> after_branches()

    assert d.test(which="a") == {"pick_branch": "a", "a": "ran", "after_branches": "after"}
    assert d.test(which="b") == {"pick_branch": "b", "b": "ran", "after_branches": "after"}
