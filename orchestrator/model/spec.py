"""The one DAG model both syntaxes compile to, and its validation.

Python DAGs (``orchestrator.dag``) and YAML DAGs (``orchestrator.authoring.yaml_dags``)
both end in :func:`build`, which returns a frozen :class:`DagSpec` or raises a
:class:`~errors.DagError` naming what is wrong. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic import ValidationError as PydanticValidationError

from orchestrator import errors
from orchestrator.model import limits, params, secret_spec, spec_schedule, task_kinds
from orchestrator.model import notify as notify_
from orchestrator.model.args import Arg as Arg
from orchestrator.model.args import ContextArg as ContextArg
from orchestrator.model.args import ContextName as ContextName
from orchestrator.model.args import ItemArg as ItemArg
from orchestrator.model.args import ParamArg as ParamArg
from orchestrator.model.args import TaskArg as TaskArg
from orchestrator.model.args import ValueArg as ValueArg
from orchestrator.model.cycles import find_cycle
from orchestrator.model.task_ids import map_instance_id as map_instance_id
from orchestrator.model.task_ids import split_task_id as split_task_id
from orchestrator.model.triggers import TriggerRule

ID_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_-]{{0,{limits.MAX_ID_LENGTH - 1}}}$"
"""Ids of DAGs, tasks and params: a letter or underscore, then letters, digits, _ or -.

No dots: a task registers with Celery as ``<dag_id>.<task_id>``."""
_ID = re.compile(ID_PATTERN)  # used with fullmatch: "$" also matches before a final \n
_QUEUE = re.compile(limits.QUEUE_PATTERN)

ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
"""Names a shell task may declare under ``env``; ``ORCH_*`` names are the task's own."""
_ENV_NAME = re.compile(ENV_NAME_PATTERN)

MAX_RETRIES = 100
MAX_TIMEOUT = 7 * 24 * 3600.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ParamType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]


class ParamSpec(secret_spec.SecretFlag):  # secret: bool = False
    type: ParamType = "any"
    default: Any = None
    required: bool = True
    description: str = ""


class SensorSpec(_Frozen):
    """A sensor pokes its function until it returns something truthy, between pokes
    holding no worker slot (the wait is a wake-up time in the database)."""

    poke_interval: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT)
    timeout: float = Field(default=3600.0, gt=0, le=MAX_TIMEOUT)


def _drop_defaults(data: Any, defaults: Mapping[str, Any]) -> Any:
    """Keys added since versions were hashed are left out at their default, so the
    version of every DAG that does not use them stays the same."""
    if isinstance(data, dict):
        for key, default in defaults.items():
            if key in data and data[key] == default:
                del data[key]
    return data


_TASK_LATER_KEYS: dict[str, Any] = {"env": {}, "outlets": [], "pool": None, "pool_slots": 1,
                                    "priority": 0, "sensor": None, "callbacks": {},
                                    "sql": None, "http": None}
_DAG_LATER_KEYS: dict[str, Any] = {
    "schedule": None, "timezone": "UTC", "catchup": "latest", "max_catchup": 100,
    "max_active_runs": None, "overlap": "skip", "max_active_tasks": None, "notify": [],
    "deadline": None, "callbacks": {}}


class TaskSpec(_Frozen):
    id: str
    kind: Literal["python", "shell", "sql", "http"]
    callable: str | None = Field(default=None, description="'module:qualname' of a function")
    command: str | None = Field(default=None, description="shell command line")
    sql: task_kinds.SqlSpec | None = None
    http: task_kinds.HttpSpec | None = None
    env: dict[str, secret_spec.EnvValue] = Field(
        default_factory=dict,
        description="Variables a shell task's command gets, besides its minimal environment.")
    args: tuple[Arg, ...] = ()
    kwargs: dict[str, Arg] = Field(default_factory=dict)
    upstream: tuple[str, ...] = Field(default=(), description="ordering-only dependencies")
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    retry_backoff: float = Field(default=1.0, ge=0, description="first retry delay, seconds")
    retry_backoff_max: float = Field(default=300.0, ge=0, description="cap on a retry delay")
    retry_jitter: bool = True
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT)
    queue: str | None = None
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    branch: bool = Field(
        default=False,
        description="The task returns the id (or list of ids) of the direct downstream "
        "tasks to follow; the others are skipped.")
    max_active: int | None = Field(
        default=None, ge=1,
        description="For a mapped task: most of its instances queued or running at once "
        "(default: no bound).")
    name: str | None = Field(
        default=None,
        description="Celery task name within the DAG (default: the id). Uses of one function "
        "share it, so a 10,000-node fan-out registers one Celery task, not 10,000.")
    outlets: tuple[str, ...] = Field(
        default=(), description="Assets its success updates (DAGs scheduled on them run).")
    pool: str | None = Field(default=None, description="Pool it takes slots of.")
    pool_slots: int = Field(default=1, ge=1, le=10_000)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000,
                          description="Among waiters for a slot, higher first, then oldest.")
    sensor: SensorSpec | None = None
    callbacks: notify_.Callbacks = Field(default_factory=dict)
    line: int | None = Field(default=None, exclude=True, description="line in the source file")

    @model_serializer(mode="wrap")
    def _leave_out_later_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _drop_defaults(handler(self), _TASK_LATER_KEYS)

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Upstream task ids, data and ordering, in first-mention order without repeats."""
        seen: dict[str, None] = dict.fromkeys(self.upstream)
        for arg in (*self.args, *self.kwargs.values()):
            if isinstance(arg, TaskArg | ItemArg):
                seen.setdefault(arg.task)
        return tuple(seen)

    @property
    def data_from(self) -> tuple[str, ...]:
        """Upstream tasks whose whole result this task reads (not the one it maps over)."""
        return tuple(dict.fromkeys(a.task for a in (*self.args, *self.kwargs.values())
                                   if isinstance(a, TaskArg)))

    @property
    def map_over(self) -> str | None:
        """The upstream task whose list result this task is mapped over, if it is mapped."""
        for arg in (*self.args, *self.kwargs.values()):
            if isinstance(arg, ItemArg):
                return arg.task
        return None

    @property
    def celery_name(self) -> str:
        return self.name or self.id

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


class DagSpec(_Frozen):
    id: str
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    tasks: tuple[TaskSpec, ...]
    timeout: float | None = Field(
        default=None, gt=0, le=MAX_TIMEOUT,
        description="Seconds a run may take; the coordinator fails it after that.")
    schedule: str | dict[str, Any] | None = Field(
        default=None, description="cron, alias (@daily), interval (every 15m), "
        "{event: NAME} or {assets: [...], when: any|all} (model.schedule checks it)")
    timezone: str = "UTC"
    catchup: Literal["none", "latest", "all"] = "latest"
    max_catchup: int = Field(default=100, ge=1, le=100_000)
    max_active_runs: int | None = Field(default=None, ge=1)
    overlap: Literal["skip", "queue"] = "skip"
    max_active_tasks: int | None = Field(default=None, ge=1)
    notify: tuple[notify_.Rule, ...] = ()
    deadline: notify_.Deadline | None = None
    callbacks: notify_.Callbacks = Field(default_factory=dict)
    source: str | None = Field(default=None, exclude=True)
    _by_id: dict[str, TaskSpec] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # Workers look tasks up by id on every message: O(1), not a scan of the DAG.
        self._by_id = {t.id: t for t in self.tasks}

    @model_serializer(mode="wrap")
    def _leave_out_later_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _drop_defaults(handler(self), _DAG_LATER_KEYS)

    def task(self, task_id: str) -> TaskSpec:
        """The task by id; a mapped instance's id (``name[3]``) gives its mapped task."""
        try:
            return self._by_id[task_id]
        except KeyError:
            base, index = split_task_id(task_id)
            if index is not None and base in self._by_id and self._by_id[base].map_over:
                return self._by_id[base]
            raise errors.UnknownTask(f"DAG {self.id!r} has no task {task_id!r}") from None


def build(data: Mapping[str, Any], *, source: str | None = None,
          max_tasks: int = 100_000) -> DagSpec:
    """Validate ``data`` into a :class:`DagSpec`; raise :class:`DagError` on any problem."""
    dag_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        spec = DagSpec.model_validate({**data, "source": source})
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(data, first["loc"])
        loc = ".".join(str(p) for p in first["loc"])
        raise errors.DagError(f"{loc}: {first['msg']}", dag_id=dag_id, source=source,
                              line=line) from None
    check(spec, max_tasks=max_tasks)
    return spec


def _line_of(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> int | None:
    if len(loc) >= 2 and loc[0] in ("tasks", "notify") and isinstance(loc[1], int):
        items = data.get(loc[0])
        if isinstance(items, list | tuple) and loc[1] < len(items):
            item = items[loc[1]]
            line = item.get("line") if isinstance(item, Mapping) else None
            return line if isinstance(line, int) else None
    return None


def check(spec: DagSpec, *, max_tasks: int = 100_000) -> None:
    """Graph-level checks pydantic cannot express: ids, references, cycles, limits."""
    where: dict[str, Any] = {"dag_id": spec.id, "source": spec.source}
    if not _ID.fullmatch(spec.id):
        raise errors.DagError(f"invalid DAG id {spec.id!r}: must match {ID_PATTERN}", **where)
    if not spec.tasks:
        raise errors.DagError("has no tasks", **where)
    if len(spec.tasks) > max_tasks:
        raise errors.DagError(f"has {len(spec.tasks)} tasks, more than the limit {max_tasks}",
                              **where)
    for name in spec.params:
        if not _ID.fullmatch(name):
            raise errors.DagError(f"invalid param name {name!r}: must match {ID_PATTERN}",
                                  **where)
    _check_defaults(spec, where)
    ids: set[str] = set()
    for t in spec.tasks:
        at = {**where, "line": t.line}
        if not _ID.fullmatch(t.id):
            raise errors.DagError(f"invalid task id {t.id!r}: must match {ID_PATTERN}", **at)
        if t.name is not None and not _ID.fullmatch(t.name):
            raise errors.DagError(f"invalid task name {t.name!r}: must match {ID_PATTERN}",
                                  **at)
        if t.id in ids:
            raise errors.DagError(f"duplicate task id {t.id!r}", **at)
        ids.add(t.id)
        _check_task_body(t, spec, at)
    _check_dependencies(spec, ids, where)
    spec_schedule.check(spec, where)
    secret_spec.check(spec, where)


def _check_defaults(spec: DagSpec, where: dict[str, Any]) -> None:
    """A default is checked as a submitted value would be (None means "no value")."""
    problems: list[str] = []
    for name, p in spec.params.items():
        if p.required or p.default is None:
            continue
        label = f"default of param {name!r}"
        wrong_type = params.type_problem(label, p.type, p.default)
        problems += [wrong_type] if wrong_type else params.problems_in(p.default, label)
    if problems:
        shown = problems[:limits.MAX_PROBLEMS_LISTED]
        raise errors.DagError("; ".join(shown) + (f"; and {len(problems) - len(shown)} more"
                                                  if len(problems) > len(shown) else ""),
                              **where)


def _check_queue(t: TaskSpec, at: dict[str, Any]) -> None:
    if t.queue is not None and not _QUEUE.fullmatch(t.queue):
        raise errors.DagError(f"task {t.id!r}: invalid queue name {t.queue!r}: must match "
                              f"{limits.QUEUE_PATTERN}", **at)


def _check_dependencies(spec: DagSpec, ids: set[str], where: dict[str, Any]) -> None:
    for t in spec.tasks:
        for dep in t.dependencies:
            if dep == t.id:
                raise errors.CycleError([t.id, t.id], **{**where, "line": t.line})
            if dep not in ids:
                raise errors.DagError(f"task {t.id!r} has unknown upstream {dep!r}",
                                      **{**where, "line": t.line})
    cycle = find_cycle({t.id: t.dependencies for t in spec.tasks})
    if cycle:
        raise errors.CycleError(cycle, **where)


def _check_task_body(t: TaskSpec, spec: DagSpec, at: dict[str, Any]) -> None:
    if t.kind == "python":
        if not t.callable or ":" not in t.callable:
            raise errors.DagError(
                f"task {t.id!r}: python tasks need callable 'module:function', "
                f"got {t.callable!r}", **at)
    elif t.kind == "shell" and not t.command:
        raise errors.DagError(f"task {t.id!r}: shell tasks need a command", **at)
    _check_kind_body(t, at)
    _check_env(t, at)
    _check_queue(t, at)
    for arg in (*t.args, *t.kwargs.values()):
        if isinstance(arg, ParamArg) and arg.param not in spec.params:
            raise errors.DagError(f"task {t.id!r} uses unknown param {arg.param!r}", **at)
        if isinstance(arg, ValueArg) and not params.is_json(arg.value):
            raise errors.DagError(f"task {t.id!r}: argument {arg.value!r} is not JSON", **at)
    if t.retry_backoff_max < t.retry_backoff:
        raise errors.DagError(f"task {t.id!r}: retry_backoff_max is below retry_backoff", **at)
    _check_mapping(t, at)
    if t.sensor is not None and (t.kind != "python" or t.map_over or t.branch):
        raise errors.DagError(f"task {t.id!r}: a sensor is a python task, neither mapped "
                              "nor branching", **at)


def _check_kind_body(t: TaskSpec, at: dict[str, Any]) -> None:
    """A task has the body of its kind and no other's."""
    bodies = {"python": t.callable, "shell": t.command, "sql": t.sql, "http": t.http}
    others = [k for k, v in bodies.items() if k != t.kind and v is not None]
    if others:
        raise errors.DagError(f"task {t.id!r}: a {t.kind} task has no {others[0]} body", **at)
    if t.kind == "sql":
        if t.sql is None:
            raise errors.DagError(f"task {t.id!r}: sql tasks need sql: {{conn, query}}", **at)
        task_kinds.check_sql(t.id, t.sql, t.kwargs, at)
    elif t.kind == "http":
        if t.http is None:
            raise errors.DagError(f"task {t.id!r}: http tasks need http: {{method, url}}",
                                  **at)
        task_kinds.check_http(t.id, t.http, t.kwargs, at)
    if t.kind in ("sql", "http") and t.args:
        raise errors.DagError(f"task {t.id!r}: a {t.kind} task takes named arguments only",
                              **at)


def _check_env(t: TaskSpec, at: dict[str, Any]) -> None:
    if t.env and t.kind != "shell":
        raise errors.DagError(f"task {t.id!r}: env is for shell tasks (a python task runs "
                              "inside the worker process)", **at)
    for name, value in t.env.items():
        if not _ENV_NAME.fullmatch(name):
            raise errors.DagError(f"task {t.id!r}: env name {name!r} is not a variable name "
                                  f"(must match {ENV_NAME_PATTERN})", **at)
        if name.upper().startswith("ORCH_"):
            raise errors.DagError(f"task {t.id!r}: env name {name!r}: ORCH_* variables are "
                                  "set by the orchestrator (identity and params)", **at)
        if isinstance(value, str) and "\0" in value:
            raise errors.DagError(f"task {t.id!r}: env {name!r} contains a NUL character",
                                  **at)


def _check_mapping(t: TaskSpec, at: dict[str, Any]) -> None:
    items = [a.task for a in (*t.args, *t.kwargs.values()) if isinstance(a, ItemArg)]
    if not items:
        if t.max_active is not None:
            raise errors.DagError(f"task {t.id!r}: max_active bounds a mapped task, and this "
                                  "task maps over nothing", **at)
        return
    if len(items) > 1:
        raise errors.DagError(f"task {t.id!r} maps over {len(items)} lists ({items}); a task "
                              "maps over one", **at)
    if t.kind == "shell":
        raise errors.DagError(f"task {t.id!r}: a shell task cannot be mapped", **at)
    if t.branch:
        raise errors.DagError(f"task {t.id!r}: a mapped task cannot branch", **at)
