"""Schedule, slot and outlet options in Python and YAML DAGs, and their validation."""

from __future__ import annotations

import pytest

from orchestrator import dag, errors, task
from orchestrator.authoring import yaml_dags


@task
def step() -> int:
    return 1


def test_python_dag_takes_schedule_options_and_task_slot_options() -> None:
    @dag(schedule="30 2 * * *", timezone="Europe/Zurich", catchup="all", max_catchup=5,
         max_active_runs=1, overlap="queue", max_active_tasks=3)
    def nightly(day: str = "x") -> None:
        step.override(outlets=["warehouse/orders"], pool="db", pool_slots=2, priority=7)()

    s = nightly.spec
    assert (s.schedule, s.timezone, s.catchup, s.max_catchup, s.max_active_runs, s.overlap,
            s.max_active_tasks) == ("30 2 * * *", "Europe/Zurich", "all", 5, 1, "queue", 3)
    t = s.task("step")
    assert (t.outlets, t.pool, t.pool_slots, t.priority) == (("warehouse/orders",), "db", 2, 7)


def test_yaml_dag_takes_the_same_keys() -> None:
    s = yaml_dags.load_text(
        "id: consumer\nschedule: {assets: [warehouse/orders], when: all}\nmax_active_runs: 1\n"
        "tasks:\n  - id: a\n    shell: echo\n    outlets: [marts/daily]\n    pool: db\n"
        "    priority: 3\n")
    assert s.schedule == {"assets": ["warehouse/orders"], "when": "all"}
    assert s.task("a").outlets == ("marts/daily",) and s.task("a").pool == "db"


def test_options_unused_leave_the_version_unchanged() -> None:
    from orchestrator.model.compiled import canonical

    @dag
    def plain() -> None:
        step()

    data = canonical(plain.spec)
    assert "schedule" not in data and "pool" not in data["tasks"][0]


@pytest.mark.parametrize(("options", "fragment"), [
    ({"schedule": "every 0s"}, "1 s to 366 days"),
    ({"schedule": "@daily", "timezone": "Nowhere/City"}, "unknown timezone"),
    ({"overlap": "queue"}, "needs max_active_runs"),
    ({"schedul": "@daily"}, "unknown DAG option"),
])
def test_bad_dag_options_are_clear_errors(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(errors.DagError) as info:
        @dag(**options)  # type: ignore[arg-type]
        def bad() -> None:
            step()
    assert fragment in str(info.value)


def test_a_scheduled_dag_needs_defaults_and_valid_names() -> None:
    with pytest.raises(errors.DagError, match="needs a default for every param"):
        @dag(schedule="@hourly")
        def needs(day: str) -> None:
            step()
    with pytest.raises(errors.DagError, match="invalid pool name"):
        @dag
        def pooled() -> None:
            step.override(pool="no spaces")()
    with pytest.raises(errors.DagError, match="invalid asset name"):
        @dag
        def outlet() -> None:
            step.override(outlets=["bad name"])()
