"""What the REST API answers, as pydantic models: /openapi.json is built from these, so
the document says exactly what goes out (schemathesis checks every answer against it).

The records of ``orchestrator.model.records`` are mapped here rather than returned as
they are: a route shows what a caller may see (no task results in a run's view, no
params in a page of runs) and the document stays stable when a record grows a field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.model import limits, records, sealed
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import AttemptOutcome, RunState, TaskState

RUN_ID_PATTERN = f"^[0-9a-f]{{{limits.RUN_ID_LENGTH}}}$"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- DAGs ----------------------------------------------------------------------------------

class DagSummary(_Out):
    id: str
    description: str
    tasks: int = Field(description="Number of tasks (a mapped task counts once).")
    version: str = Field(description="sha256 of the DAG's definition.")
    schedule: str | None = Field(default=None, description="Not built yet: always null.")


class DagLoadError(_Out):
    file: str
    error: str


class DagList(_Out):
    dags: list[DagSummary]
    errors: list[DagLoadError] = Field(description="DAG files that failed to load.")


class Node(_Out):
    id: str
    kind: Literal["python", "shell", "sql", "http"]
    trigger_rule: str
    retries: int
    timeout: float | None
    queue: str | None
    mapped_over: str | None = Field(description="The task whose list result it maps over.")
    branch: bool


class Edge(_Out):
    source: str
    target: str
    data: bool = Field(description="The target reads the source's result (else ordering).")


class DagDetail(DagSummary):
    nodes: list[Node]
    edges: list[Edge]
    params_schema: dict[str, Any] = Field(description="JSON Schema of the run params.")
    timeout: float | None = Field(description="Seconds a run may take.")


_JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


def params_schema(dag: CompiledDag) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, p in dag.spec.params.items():
        prop: dict[str, Any] = {"type": p.type} if p.type in _JSON_TYPES else {}
        if p.description:
            prop["description"] = p.description
        if not p.required:
            prop["default"] = p.default
        props[name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": [n for n, p in dag.spec.params.items() if p.required]}


def dag_summary(dag: CompiledDag) -> DagSummary:
    return DagSummary(id=dag.id, description=dag.spec.description, tasks=len(dag.spec.tasks),
                      version=dag.version)


def dag_detail(dag: CompiledDag) -> DagDetail:
    nodes = [Node(id=t.id, kind=t.kind, trigger_rule=t.trigger_rule.value, retries=t.retries,
                  timeout=t.timeout, queue=t.queue, mapped_over=t.map_over, branch=t.branch)
             for t in dag.spec.tasks]
    edges = [Edge(source=up, target=t.id, data=up in t.data_from or up == t.map_over)
             for t in dag.spec.tasks for up in t.dependencies]
    return DagDetail(**dag_summary(dag).model_dump(), nodes=nodes, edges=edges,
                     params_schema=params_schema(dag), timeout=dag.spec.timeout)


class SubmitBody(_In):
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="The run's params (see params_schema).")
    logical_time: dt.datetime | None = Field(
        default=None, description="The tick the run is for (naive: UTC), unique per DAG: a "
        "second run at the same one is a 409 naming the first. Its data interval is the "
        "schedule's for a timed DAG.")


class Submitted(_Out):
    run_id: str
    created: bool = Field(description="False: the Idempotency-Key named an existing run.")


# -- runs ----------------------------------------------------------------------------------

class RunSummary(_Out):
    id: str
    dag_id: str
    state: RunState
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total_tasks: int
    unfinished: int
    dag_version: str | None
    trigger: str = Field(description="manual, schedule, event, asset or backfill.")
    logical_time: dt.datetime | None = Field(
        description="The tick the run is for (unique per DAG); null for a manual run "
        "submitted without one.")
    interval_start: dt.datetime | None = Field(description="Its data interval's start.")
    interval_end: dt.datetime | None = Field(description="Its data interval's end "
                                             "(exclusive).")
    backfill_id: str | None


class RunPage(_Out):
    runs: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null "
                                    "on the last one.")


class AttemptView(_Out):
    attempt: int
    outcome: AttemptOutcome
    worker: str | None
    pid: int | None
    celery_id: str | None = Field(description="Its Celery task id (Flower's task page).")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    dag_version: str | None = Field(description="The DAG version its worker had loaded.")


class TaskView(_Out):
    task_id: str
    state: TaskState
    attempt: int
    max_attempts: int
    worker: str | None
    error: str | None
    queued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    map_count: int | None = Field(description="A mapped task: its number of instances.")
    map_done: int | None
    map_failed: int | None
    map_parent: str | None = Field(description="A mapped instance: its mapped task.")
    map_index: int | None
    attempts: list[AttemptView]


class RunDetail(RunSummary):
    params: dict[str, Any]
    idempotency_key: str | None
    tasks: list[TaskView]


def run_summary(run: records.Run) -> RunSummary:
    return RunSummary(id=run.id, dag_id=run.dag_id, state=run.state,
                      created_at=run.created_at, finished_at=run.finished_at,
                      total_tasks=run.total_tasks, unfinished=run.unfinished,
                      dag_version=run.dag_version, trigger=run.trigger,
                      logical_time=run.logical_time, interval_start=run.interval_start,
                      interval_end=run.interval_end, backfill_id=run.backfill_id)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


Mask = Callable[[str], str]


def _masked(mask: Mask, value: str | None) -> str | None:
    return None if value is None else mask(value)


def _attempt(a: records.Attempt, mask: Mask) -> AttemptView:
    data = a.model_dump(include=set(AttemptView.model_fields))
    data.update(error_message=_masked(mask, a.error_message),
                traceback=_masked(mask, a.traceback))
    return AttemptView(**data, duration_s=_seconds(a.started_at, a.finished_at))


def _task(t: records.TaskInstance, mask: Mask) -> TaskView:
    fields = set(TaskView.model_fields) - {"attempts", "duration_s", "error"}
    return TaskView(**t.model_dump(include=fields), error=_masked(mask, t.error),
                    duration_s=t.duration_s, attempts=[_attempt(a, mask) for a in t.attempts])


def run_detail(run: records.Run, order: list[str] | None = None, *,
               mask: Mask = str, mask_value: Callable[[Any], Any] = lambda v: v,
               ) -> RunDetail:
    """``order``: the DAG's task order (mapped instances follow their task). ``mask``:
    applied to errors and tracebacks, which quote whatever the failing code had (a
    setting's secret in a connection error, say); ``mask_value``: to the params, whose
    secret ones show as ``***``."""
    rank = {t: i for i, t in enumerate(order or [])}
    tasks = sorted(run.tasks.values(), key=lambda t: (
        rank.get(t.map_parent or t.task_id, len(rank)), t.map_parent is not None,
        t.map_index or 0, t.task_id))
    return RunDetail(**run_summary(run).model_dump(),
                     params=mask_value(sealed.shown(run.params)),
                     idempotency_key=run.idempotency_key, tasks=[_task(t, mask) for t in tasks])


class RerunBody(_In):
    from_task: str | None = Field(default=None, max_length=limits.MAX_ID_LENGTH,
                                  description="Rerun this task and everything downstream "
                                  "of it (default: the failed tasks).")


class Cancelled(_Out):
    run_id: str
    state: RunState


class Rerun(_Out):
    run_id: str
    reset: list[str] = Field(description="The tasks that run again, in dependency order.")


# -- logs ----------------------------------------------------------------------------------

class LogChunkView(_Out):
    seq: int = Field(description="From 1 per attempt; read on with `after=seq`.")
    at: dt.datetime
    data: str


class LogPage(_Out):
    run_id: str
    task_id: str
    attempt: int
    outcome: AttemptOutcome = Field(description="`running` while the log may grow.")
    chunks: list[LogChunkView]
    next_after: int = Field(description="Pass as `after` to read on.")
    complete: bool = Field(description="The attempt has ended and every chunk was read.")
