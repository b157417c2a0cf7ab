"""``{context: NAME}`` arguments: what YAML compiles them to, what a misspelt name does
(refused at load, naming the file and line), what the task receives, and that DAGs which
do not use them keep the version they had before the kind existed."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.execution import operators, task_context
from orchestrator.model import compiled, spec

NAMES = ("logical_time", "interval_start", "interval_end", "payload", "run_id", "dag_id")

PINNED = """\
id: pinned_args
params:
  day: {type: string, default: "2026-01-01"}
tasks:
  - id: listing
    python: m:listing
    args: [{param: day}, 3, {a: 1}]
  - id: each
    python: m:each
    args: [{item: listing}]
    kwargs: {whole: {task: listing}, fixed: [1, 2]}
"""
PINNED_VERSION = "4d351c3d01da58f2e4f73e1e009d46c928ad83815063e092a109dcddae5a3fa3"
"""PINNED's version as computed before the context kind was added (every other kind)."""


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def _yaml(args: str, kwargs: str = "{}") -> str:
    return textwrap.dedent(f"""\
        id: ctx_args
        tasks:
          - id: first
            shell: "true"
          - id: show
            python: tests.unit.test_context_args:echo
            args: {args}
            kwargs: {kwargs}
        """)


def test_existing_dags_keep_their_version() -> None:
    assert compiled.CompiledDag.of(yaml_dags.load_text(PINNED)).version == PINNED_VERSION


def test_each_context_name_compiles_to_a_context_arg() -> None:
    s = yaml_dags.load_text(_yaml("[" + ", ".join(f"{{context: {n}}}" for n in NAMES) + "]",
                                  "{when: {context: logical_time}}"))
    show = s.task("show")
    assert show.args == tuple(spec.ContextArg(context=n) for n in NAMES)  # type: ignore[arg-type]
    assert show.kwargs == {"when": spec.ContextArg(context="logical_time")}
    assert show.dependencies == ()  # a context value is no upstream
    data = compiled.canonical(s)
    assert data["tasks"][1]["kwargs"] == {"when": {"kind": "context",
                                                   "context": "logical_time"}}
    back = spec.DagSpec.model_validate(data)  # what the store keeps reads back the same
    assert back.task("show").args == show.args and compiled.canonical(back) == data
    plain = yaml_dags.load_text(_yaml("[]"))
    assert compiled.CompiledDag.of(plain).version != compiled.CompiledDag.of(s).version


@pytest.mark.parametrize("ref", ["logical_date", "LOGICAL_TIME", "params", "5", "[run_id]",
                                 "{a: 1}", "null"])
def test_an_unknown_context_name_is_refused_at_load_naming_file_and_line(
        tmp_path: Path, ref: str) -> None:
    path = tmp_path / "ctx.yaml"
    path.write_text(_yaml("[1]", f"{{x: {{context: {ref}}}}}"), encoding="utf-8")
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_file(path)
    e = info.value
    assert e.source == str(path) and e.line == 5  # the task's line: `- id: show`
    assert str(e).startswith(f"{path}:5: DAG 'ctx_args': task 'show': ")
    assert "names no context value; one of: " + ", ".join(NAMES) in str(e)


def test_the_model_refuses_an_unknown_name_from_any_syntax() -> None:
    with pytest.raises(errors.DagError, match="context"):
        spec.build({"id": "d", "tasks": [{"id": "a", "kind": "python", "callable": "m:f",
                                          "args": [{"kind": "context", "context": "nope"}]}]})


def test_the_task_receives_the_context_values() -> None:
    s = yaml_dags.load_text(_yaml("[" + ", ".join(f"{{context: {n}}}" for n in NAMES) + "]",
                                  "{when: {context: logical_time}, n: 3}"))
    when = dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC)
    ctx = task_context.TaskContext("ctx_args", "r" * 32, "show", 1, {}, logical_time=when,
                                   interval_start=when - dt.timedelta(days=1),
                                   interval_end=when, trigger="event",
                                   payload={"event": "e", "payload": {"k": 1}})
    got = operators.call(s.task("show"), {}, {}, ctx)
    assert got == {"args": [when, when - dt.timedelta(days=1), when,
                            {"event": "e", "payload": {"k": 1}}, "r" * 32, "ctx_args"],
                   "kwargs": {"when": when, "n": 3}}
    manual = task_context.TaskContext("ctx_args", "m" * 32, "show", 1, {})
    assert operators.call(s.task("show"), {}, {}, manual)["args"][:4] == [None] * 4
