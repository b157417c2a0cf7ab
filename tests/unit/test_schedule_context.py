"""A scheduled run's logical time and data interval reach a shell task's environment
(ISO, UTC) and a Python task's context; a manual run adds no variable."""

from __future__ import annotations

import datetime as dt

from orchestrator.authoring import yaml_dags
from orchestrator.execution import operators
from orchestrator.execution.task_context import TaskContext

TICK = dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 9, 6, 0, tzinfo=dt.UTC)


def _env(ctx: TaskContext) -> dict[str, str]:
    task = yaml_dags.load_text("id: d\ntasks:\n  - id: a\n    shell: env\n").tasks[0]
    return operators.shell_env(task, ctx)


def test_a_scheduled_run_gives_the_shell_its_logical_time_and_interval() -> None:
    ctx = TaskContext("d", "r1", "a", 1, {}, logical_time=TICK, interval_start=TICK,
                      interval_end=END, trigger="schedule")
    env = _env(ctx)
    assert env["ORCH_LOGICAL_TIME"] == "2026-03-08T07:00:00+00:00"
    assert env["ORCH_INTERVAL_START"] == "2026-03-08T07:00:00+00:00"
    assert env["ORCH_INTERVAL_END"] == "2026-03-09T06:00:00+00:00"


def test_a_manual_run_adds_no_schedule_variable() -> None:
    ctx = TaskContext("d", "r1", "a", 1, {})
    assert ctx.trigger == "manual" and ctx.logical_time is None and ctx.payload is None
    assert not {k for k in _env(ctx) if k.startswith(("ORCH_LOGICAL", "ORCH_INTERVAL"))}
