"""YAML DAG files compile to the same :class:`~spec.DagSpec` as Python DAGs.

::

    id: nightly
    params:
      day: {type: string, default: "2026-01-01"}
    tasks:
      - id: extract
        python: mypkg.etl:extract        # a function by import path
        kwargs: {day: {param: day}}
      - id: load
        python: mypkg.etl:load
        args: [{task: extract}]          # the return value of 'extract'
        retries: 2
      - id: notify
        shell: echo loaded to "$TARGET"  # a shell command
        env: {TARGET: warehouse}         # variables it gets besides the minimal set
        upstream: [load]                 # ordering only
      - id: fetch
        http: {method: GET, conn: api, path: /orders, params: {day: {param: day}}}
      - id: store
        sql: {conn: warehouse, query: "INSERT INTO o VALUES (:id)", rows: {task: fetch}}

An argument written ``{task: ID}`` is an upstream task's result, ``{param: NAME}`` a run
parameter, ``{item: ID}`` one item of an upstream task's list result (the task is then
mapped: it runs once per item, at most ``max_active`` at a time, and its result is the
list of theirs, in order), ``{context: NAME}`` a value of the run's context (``logical_time``,
``interval_start``, ``interval_end``, ``payload``, ``run_id`` or ``dag_id``, as
``context()`` gives them), ``{secret: {env: NAME}}`` or ``{secret: {file: PATH}}`` a
secret the worker reads when the task runs (also as a shell task's ``env`` value; a param
with ``secret: true`` is a secret too); anything else is a literal.
``sql`` and ``http`` tasks name a connection (``orchestrator.kinds``); their values are
bound parameters, a body and query parameters, each a literal or such a reference.
``orchestrator/schema/dag.schema.json`` is the JSON Schema for editors.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml

from orchestrator import errors
from orchestrator.authoring import kind_bodies, notify_rules, yaml_loader
from orchestrator.model import secret_spec, spec

_TASK_KEYS = {"id", "python", "shell", "args", "kwargs", "upstream", "retries",
              "retry_backoff", "retry_backoff_max", "retry_jitter", "timeout", "queue",
              "trigger_rule", "branch", "max_active", "env", "outlets", "pool", "pool_slots",
              "priority", "sensor", "sql", "sql_file", "http", *notify_rules.CALLBACK_KEYS}
_KIND_KEYS = ("python", "shell", "sql", "sql_file", "http")
_SCHEDULE_KEYS = {"schedule", "timezone", "catchup", "max_catchup", "max_active_runs",
                  "overlap", "max_active_tasks"}
_TOP_KEYS = {"id", "description", "params", "tasks", "timeout", *_SCHEDULE_KEYS, "notify",
             "deadline", *notify_rules.CALLBACK_KEYS}
_PARAM_KEYS = {"type", "default", "description", "secret"}
_JSON_TYPES: dict[type, spec.ParamType] = {
    bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
    dict: "object"}

CONTEXT_NAMES: tuple[str, ...] = typing.get_args(spec.ContextName)

SCHEMA_PATH = Path(__file__).parents[1] / "schema" / "dag.schema.json"


def load_file(path: Path, *, max_tasks: int = 100_000,
              max_bytes: int = 4 * 1024 * 1024) -> spec.DagSpec:
    """Compile one file, refused unread when it is bigger than ``max_bytes``."""
    return load_text(yaml_loader.read(path, max_bytes), source=str(path), max_tasks=max_tasks)


def load_text(text: str, *, source: str = "<yaml>", max_tasks: int = 100_000) -> spec.DagSpec:
    data, root = yaml_loader.parse(text, source=source)
    if not isinstance(data, dict):
        raise errors.DagError("a DAG file must be a mapping with 'id' and 'tasks'",
                              source=source, line=1)
    compiled = _compile(data, source, item_lines(root, "tasks"))
    if "notify" in data:
        compiled["notify"] = notify_rules.compile_rules(
            data["notify"], item_lines(root, "notify"),
            lambda msg, line: errors.DagError(msg, dag_id=compiled["id"], source=source,
                                              line=line))
    return spec.build(compiled, source=source, max_tasks=max_tasks)


def item_lines(root: yaml.Node | None, name: str) -> list[int]:
    """The line of each item of the top-level list ``name``."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == name and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _compile(data: dict[str, Any], source: str, lines: list[int]) -> dict[str, Any]:
    dag_id = data.get("id") if isinstance(data.get("id"), str) else None

    def fail(msg: str, line: int | None = None) -> errors.DagError:
        return errors.DagError(msg, dag_id=dag_id, source=source, line=line)

    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown, key=str)}; allowed: {sorted(_TOP_KEYS)}")
    if "id" not in data:
        raise fail("missing 'id'")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise fail("'tasks' must be a non-empty list")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise fail("'params' must be a mapping of name to {type, default, description}")
    out_tasks = []
    for i, t in enumerate(tasks):
        line = lines[i] if i < len(lines) else None
        if not isinstance(t, dict):
            raise fail(f"tasks[{i}] must be a mapping", line)
        out_tasks.append(_compile_task(t, i, line, fail, source))
    return {"id": data["id"], "description": data.get("description") or "",
            "timeout": data.get("timeout"),
            **{k: data[k] for k in _SCHEDULE_KEYS if k in data},
            **({"deadline": data["deadline"]} if "deadline" in data else {}),
            "callbacks": notify_rules.callbacks_of(data),
            "params": {k: _compile_param(k, v, fail) for k, v in params.items()},
            "tasks": out_tasks}


def _compile_param(name: str, p: Any, fail: Any) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise fail(f"param {name!r} must be a mapping with type/default/description")
    unknown = set(p) - _PARAM_KEYS
    if unknown:
        raise fail(f"param {name!r}: unknown key(s) {sorted(unknown, key=str)}")
    out: dict[str, Any] = {"required": "default" not in p,
                           "description": p.get("description") or ""}
    if "default" in p:
        out["default"] = p["default"]
    ptype = p.get("type") or _JSON_TYPES.get(type(p.get("default")), "any")
    out["type"] = ptype
    if "secret" in p:
        if not isinstance(p["secret"], bool):
            raise fail(f"param {name!r}: secret must be true or false, got {p['secret']!r}")
        out["secret"] = p["secret"]
    return out


def _compile_task(t: dict[str, Any], i: int, line: int | None, fail: Any,
                  source: str) -> dict[str, Any]:
    name = t.get("id", f"tasks[{i}]")
    unknown = set(t) - _TASK_KEYS
    if unknown:
        raise fail(f"task {name!r}: unknown key(s) {sorted(unknown, key=str)}", line)
    kinds = [k for k in ("python", "shell", "sql", "http") if k in t]
    if len(kinds) != 1:
        raise fail(f"task {name!r}: give exactly one of 'python' (module:function), "
                   "'shell' (a command), 'sql' (a statement) or 'http' (a request)", line)
    if "sql_file" in t and kinds[0] != "sql":
        raise fail(f"task {name!r}: sql_file goes with sql: {{conn: NAME}}", line)
    out = {k: v for k, v in t.items() if k not in (*_KIND_KEYS, "args", "kwargs",
                                                    *notify_rules.CALLBACK_KEYS)}
    out["line"] = line
    out["callbacks"] = notify_rules.callbacks_of(t)
    args = t.get("args") or []
    kwargs = t.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise fail(f"task {name!r}: 'args' must be a list and 'kwargs' a mapping", line)

    def arg(value: Any) -> dict[str, Any]:
        try:
            return _arg(value)
        except ValueError as exc:
            raise fail(f"task {name!r}: {exc}", line) from None

    def body_fail(msg: str) -> Exception:
        return fail(f"task {name!r}: {msg}", line)  # type: ignore[no-any-return]

    out["args"] = [arg(a) for a in args]
    out["kwargs"] = {k: arg(v) for k, v in kwargs.items()}
    out.update(_body(kinds[0], t, bool(args or kwargs), source, arg, body_fail))
    if isinstance(t.get("env"), dict):  # {secret: ...} values; the rest are strings
        out["env"] = {k: arg(v) if isinstance(v, dict) and "secret" in v else v
                      for k, v in t["env"].items()}
    if isinstance(out.get("upstream"), str):
        out["upstream"] = [out["upstream"]]
    return out


def _body(kind: str, t: dict[str, Any], has_args: bool, source: str,
          arg: kind_bodies.ToArg, fail: kind_bodies.Fail) -> dict[str, Any]:
    """The task's kind and body (python, shell, sql or http)."""
    if kind == "python":
        return {"kind": "python", "callable": t["python"]}
    if kind == "shell":
        return {"kind": "shell", "command": t["shell"]}
    if has_args:
        raise fail(f"a {kind} task binds values under its "
                   f"{'params' if kind == 'sql' else 'json and params'}, not args/kwargs")
    if kind == "sql":
        return kind_bodies.sql_body(t["sql"], t.get("sql_file"), source, arg, fail)
    return kind_bodies.http_body(t["http"], arg, arg, fail)


def _arg(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and len(value) == 1:
        (key, ref), = value.items()
        if key in ("task", "param") and isinstance(ref, str):
            return {"kind": key, key: ref}
        if key == "item" and isinstance(ref, str):
            return {"kind": "item", "task": ref}
        if key == "context":
            # Always a reference (never a literal): a misspelt name must not run the task
            # with the mapping itself as its argument.
            if not isinstance(ref, str) or ref not in CONTEXT_NAMES:
                raise ValueError(f"{{context: {ref!r}}} names no context value; one of: "
                                 f"{', '.join(CONTEXT_NAMES)}")
            return {"kind": "context", "context": ref}
        if key == "secret":  # a reference too: the worker reads it, nothing stores it
            return secret_spec.yaml_arg(ref)
    return {"kind": "value", "value": value}
