"""Authoring DAGs in Python: ``@task`` functions called inside a ``@dag`` function.

Calling a task inside a DAG body does not run it: it adds a node and returns an
:class:`Output`, a reference to the value the task will return at run time. Passing an
Output to another task wires a data dependency; ``a >> b`` wires ordering only. The
DAG function's own parameters become the run parameters. Nothing here does I/O.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from orchestrator import errors
from orchestrator.authoring import notify_rules
from orchestrator.execution.local_report import LocalRun
from orchestrator.model import params as run_params
from orchestrator.model import secret_spec, spec

P = ParamSpec("P")
R = TypeVar("R")

_building: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "orchestrator_dag_builder", default=None)

_TASK_OPTIONS = ("retries", "retry_backoff", "retry_backoff_max", "retry_jitter", "timeout",
                 "queue", "trigger_rule", "branch", "max_active", "outlets", "pool",
                 "pool_slots", "priority", "sensor", *notify_rules.CALLBACK_KEYS)
_DAG_OPTIONS = ("schedule", "timezone", "catchup", "max_catchup", "max_active_runs",
                "overlap", "max_active_tasks", "notify", "deadline",
                *notify_rules.CALLBACK_KEYS)


class Output:
    """The future return value of a task inside a DAG body."""

    __slots__ = ("_builder", "task_id")

    def __init__(self, builder: _Builder, task_id: str) -> None:
        self._builder = builder
        self.task_id = task_id

    def __rshift__(self, other: Output | Sequence[Output]) -> Output | Sequence[Output]:
        for o in _outputs(other):
            self._builder.order(self, o)
        return other

    def __rrshift__(self, other: Sequence[Output]) -> Output:
        for o in _outputs(other):
            self._builder.order(o, self)
        return self

    def __lshift__(self, other: Output | Sequence[Output]) -> Output | Sequence[Output]:
        for o in _outputs(other):
            self._builder.order(o, self)
        return other

    def __rlshift__(self, other: Sequence[Output]) -> Output:
        for o in _outputs(other):
            self._builder.order(self, o)
        return self

    def __bool__(self) -> bool:
        raise errors.DagError(
            f"the output of task {self.task_id!r} is only known at run time; "
            "branch inside a task, not in the DAG body")

    def __repr__(self) -> str:
        return f"Output({self.task_id!r})"


class _Item:
    """Marks the argument a mapped task is called with once per item."""

    __slots__ = ("output",)

    def __init__(self, output: Output) -> None:
        self.output = output


class Param:
    """A run parameter inside a DAG body."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


def _outputs(x: Output | Sequence[Output]) -> list[Output]:
    items = [x] if isinstance(x, Output) else list(x)
    for o in items:
        if not isinstance(o, Output):
            raise errors.DagError(f">> and << take task outputs, got {o!r}")
    return items


class TaskFunction(Generic[P, R]):
    """A function decorated with ``@task``. Outside a DAG body it is a plain call."""

    def __init__(self, fn: Callable[P, R], task_id: str | None = None,
                 **options: Any) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.task_id = task_id or fn.__name__
        self.options = options
        self._signature = inspect.signature(fn)

    @property
    def callable_path(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def override(self, *, task_id: str | None = None, **options: Any) -> TaskFunction[P, R]:
        """The same function with another task id or options, for one use in a DAG."""
        _check_options(options)
        return TaskFunction(self.fn, task_id or self.task_id, **{**self.options, **options})

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = _building.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise errors.DagError(f"task {self.task_id!r} called with bad arguments: {exc}",
                                  dag_id=builder.dag_id) from None
        caller = sys._getframe(1)
        return builder.add(self, args, kwargs, caller.f_lineno)

    def map(self, over: Output, /, *args: Any, **kwargs: Any) -> Output:
        """Call this task once per item of ``over`` (an upstream task's list result), each
        item as the first argument and ``args``/``kwargs`` as the rest, in parallel at run
        time. The output is the list of their results, in item order. Bound how many run at
        once with the ``max_active`` option."""
        builder = _building.get()
        if builder is None:
            raise errors.DagError(f"{self.task_id}.map() works only inside a @dag function")
        if not isinstance(over, Output):
            raise errors.DagError(f"task {self.task_id!r}: map() takes an upstream task's "
                                  f"output to map over, got {over!r}", dag_id=builder.dag_id)
        try:
            self._signature.bind(over, *args, **kwargs)
        except TypeError as exc:
            raise errors.DagError(f"task {self.task_id!r} mapped with bad arguments: {exc}",
                                  dag_id=builder.dag_id) from None
        caller = sys._getframe(1)
        return builder.add(self, (_Item(over), *args), kwargs, caller.f_lineno)


def _with_callbacks(options: dict[str, Any], dag_id: str) -> dict[str, Any]:
    """``on_failure=fn`` and the like become ``callbacks``, each function by import path
    (a worker imports it, as it does a task's function)."""
    out = {k: v for k, v in options.items() if k not in notify_rules.CALLBACK_KEYS}
    callbacks: dict[str, str] = {}
    for kind, fn in notify_rules.callbacks_of(options).items():
        path = (fn if isinstance(fn, str)
                else f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}")
        if "<" in path:
            raise errors.DagError(f"{kind}: a callback is a module-level function (a worker "
                                  f"imports it by name), got {path}", dag_id=dag_id)
        callbacks[kind] = path
    return {**out, "callbacks": callbacks} if callbacks else out


def _check_options(options: dict[str, Any]) -> None:
    unknown = set(options) - set(_TASK_OPTIONS)
    if unknown:
        raise errors.DagError(f"unknown task option(s) {sorted(unknown)}; "
                              f"known: {list(_TASK_OPTIONS)}")


@overload
def task(fn: Callable[P, R], /) -> TaskFunction[P, R]: ...
@overload
def task(*, task_id: str | None = None, retries: int = 0, retry_backoff: float = 1.0,
         retry_backoff_max: float = 300.0, retry_jitter: bool = True,
         timeout: float | None = None, queue: str | None = None,
         trigger_rule: str = "all_success", branch: bool = False,
         max_active: int | None = None, outlets: Sequence[str] = (),
         pool: str | None = None, pool_slots: int = 1, priority: int = 0,
         on_failure: Callable[..., Any] | None = None,
         on_success: Callable[..., Any] | None = None,
         on_retry: Callable[..., Any] | None = None,
         ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, *, task_id: str | None = None,
         **options: Any) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Declare a task. Options: retries, retry_backoff (first delay, s), retry_backoff_max,
    retry_jitter, timeout (s), queue, trigger_rule, branch, max_active (a mapped task's
    instances running at once)."""
    _check_options(options)

    def wrap(f: Callable[P, R]) -> TaskFunction[P, R]:
        return TaskFunction(f, task_id, **options)

    return wrap(fn) if fn is not None else wrap


class _Builder:
    def __init__(self, dag_id: str, params: dict[str, spec.ParamSpec]) -> None:
        self.dag_id = dag_id
        self.params = params
        self.tasks: dict[str, dict[str, Any]] = {}
        self._used: dict[str, int] = {}

    def add(self, fn: TaskFunction[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            line: int) -> Output:
        base = fn.task_id
        n = self._used.get(base, 0)
        # A function used twice becomes name, name__1, ... as Airflow users expect;
        # skip ids already taken (e.g. by a task_id="name__1" override) instead of
        # silently replacing that task.
        task_id = base if n == 0 else f"{base}__{n}"
        while task_id in self.tasks:
            n += 1
            task_id = f"{base}__{n}"
        self._used[base] = n + 1
        kwargs = {**secret_spec.secret_defaults(fn._signature, args, kwargs), **kwargs}
        self.tasks[task_id] = {
            "id": task_id, "name": base, "kind": "python", "callable": fn.callable_path,
            "args": [self._arg(a, task_id) for a in args],
            "kwargs": {k: self._arg(v, task_id) for k, v in kwargs.items()},
            "upstream": [], "line": line, **_with_callbacks(fn.options, self.dag_id),
        }
        return Output(self, task_id)

    def add_body(self, task_id: str, body: dict[str, Any], options: dict[str, Any],
                 line: int) -> Output:
        """A task of another kind than python (``sql_task``, ``http_task``): its body, its
        values (Outputs and Params among them) under ``kwargs``."""
        _check_options(options)
        if task_id in self.tasks:
            raise errors.DagError(f"duplicate task id {task_id!r}", dag_id=self.dag_id)
        kwargs = {k: self._arg(v, task_id) for k, v in body.get("kwargs", {}).items()}
        self.tasks[task_id] = {"id": task_id, **body, "kwargs": kwargs, "args": [],
                               "upstream": [], "line": line,
                               **_with_callbacks(options, self.dag_id)}
        self._used.setdefault(task_id, 1)
        return Output(self, task_id)

    def order(self, first: Output, then: Output) -> None:
        for o in (first, then):
            if o._builder is not self:
                raise errors.DagError(f"task {o.task_id!r} belongs to another DAG",
                                      dag_id=self.dag_id)
        ups = self.tasks[then.task_id]["upstream"]
        if first.task_id not in ups:
            ups.append(first.task_id)

    def _arg(self, value: Any, task_id: str) -> dict[str, Any]:
        if isinstance(value, _Item):
            return {**self._arg(value.output, task_id), "kind": "item"}
        if isinstance(value, Output):
            if value._builder is not self:
                raise errors.DagError(f"task {value.task_id!r} belongs to another DAG",
                                      dag_id=self.dag_id)
            return {"kind": "task", "task": value.task_id}
        if isinstance(value, Param):
            return {"kind": "param", "param": value.name}
        if isinstance(value, secret_spec.SecretArg):
            return value.model_dump()
        if _contains_ref(value):
            raise errors.DagError(
                f"task {task_id!r}: pass task outputs and params as direct arguments, "
                "not inside lists or dicts", dag_id=self.dag_id)
        return {"kind": "value", "value": value}


def _contains_ref(value: Any) -> bool:
    if isinstance(value, Output | Param | secret_spec.SecretArg):
        return True
    if isinstance(value, list | tuple | set):
        return any(_contains_ref(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_ref(v) for v in value.values())
    return False


_PARAM_TYPES: dict[Any, spec.ParamType] = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
    dict: "object", tuple: "array", secret_spec.Secret: "string",
}


def _param_type(annotation: Any) -> spec.ParamType:
    origin = typing.get_origin(annotation) or annotation
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        return "any"
    return _PARAM_TYPES.get(origin, "any")


class Dag:
    """A DAG declared with ``@dag``. ``spec`` is the validated :class:`~spec.DagSpec`."""

    def __init__(self, fn: Callable[..., Any], dag_id: str | None,
                 description: str | None, timeout: float | None = None,
                 **options: Any) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        unknown = set(options) - set(_DAG_OPTIONS)
        if unknown:
            raise errors.DagError(f"unknown DAG option(s) {sorted(unknown)}; "
                                  f"known: {['id', 'description', 'timeout', *_DAG_OPTIONS]}")
        self.spec = self._build(fn, dag_id or fn.__name__, description, timeout, options)

    @property
    def id(self) -> str:
        return self.spec.id

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.DagError(f"DAG {self.id!r} is not called directly: submit it with "
                              "orchestrator.Client().submit or test it with .test()")

    def test(self, *, raise_on_failure: bool = True, wait_backoff: bool = False,
             **params: Any) -> LocalRun:
        """Run every task here as workers would: see :func:`.local.run_in_process`."""
        from orchestrator.execution import local  # here: authoring imports no runner

        return local.run_in_process(self.spec, params, raise_on_failure=raise_on_failure,
                                    wait_backoff=wait_backoff)

    @staticmethod
    def _build(fn: Callable[..., Any], dag_id: str, description: str | None,
               timeout: float | None, options: dict[str, Any]) -> spec.DagSpec:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolved annotations just mean "any"
            hints = {}
        params: dict[str, spec.ParamSpec] = {}
        for name, p in inspect.signature(fn).parameters.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise errors.DagError("DAG functions take named params, not *args/**kwargs",
                                      dag_id=dag_id)
            has_default = p.default is not inspect.Parameter.empty
            params[name] = spec.ParamSpec(
                type=_param_type(hints.get(name, Any)),
                default=p.default if has_default else None, required=not has_default,
                secret=secret_spec.is_secret_annotation(hints.get(name)))
        builder = _Builder(dag_id, params)
        token = _building.set(builder)
        try:
            fn(**{name: Param(name) for name in params})
        finally:
            _building.reset(token)
        for name, ps in params.items():
            if not ps.required and not run_params.is_json(ps.default):
                raise errors.DagError(f"default of param {name!r} is not JSON: {ps.default!r}",
                                      dag_id=dag_id)
        return spec.build(
            {"id": dag_id, "description": description or (inspect.getdoc(fn) or ""),
             "params": params, "tasks": list(builder.tasks.values()), "timeout": timeout,
             **_with_callbacks(options, dag_id)},
            source=inspect.getsourcefile(fn))


@overload
def dag(fn: Callable[..., Any], /) -> Dag: ...
@overload
def dag(*, id: str | None = None, description: str | None = None,
        timeout: float | None = None, schedule: str | dict[str, Any] | None = None,
        timezone: str = "UTC", catchup: str = "latest", max_catchup: int = 100,
        max_active_runs: int | None = None, overlap: str = "skip",
        max_active_tasks: int | None = None, notify: Sequence[Mapping[str, Any]] = (),
        deadline: float | str | None = None, on_failure: Callable[..., Any] | None = None,
        on_success: Callable[..., Any] | None = None,
        ) -> Callable[[Callable[..., Any]], Dag]: ...


def dag(fn: Callable[..., Any] | None = None, /, *, id: str | None = None,
        description: str | None = None, timeout: float | None = None,
        **options: Any) -> Dag | Callable[[Callable[..., Any]], Dag]:
    """Declare a DAG; its body calls tasks to wire them, its parameters are run params.
    ``timeout``: seconds a run may take before the coordinator fails it. Scheduling:
    ``schedule`` (cron, ``@daily``, ``every 15m``, ``{"event": NAME}``, ``{"assets": [...],
    "when": "any"}``), ``timezone`` (IANA), ``catchup`` (none, latest, all) with
    ``max_catchup``, ``max_active_runs`` with ``overlap`` (skip, queue), ``max_active_tasks``.
    Alerts: ``notify`` (rules, as in YAML), ``deadline`` (seconds, or ``"HH:MM"``),
    ``on_failure``/``on_success`` callbacks of the run."""

    def wrap(f: Callable[..., Any]) -> Dag:
        return Dag(f, id, description, timeout, **options)

    return wrap(fn) if fn is not None else wrap
