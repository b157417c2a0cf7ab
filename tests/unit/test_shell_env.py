"""A shell task's environment: the minimal set, its identity and params, what it declares
under ``env``; never the process's own variables. And how ``env`` is validated."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.execution import operators
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import compiled, spec

CTX = TaskContext(dag_id="d", run_id="r1", task_id="a", attempt=2,
                  params={"word": "hi", "n": 3, "cfg": {"k": [1]}})


def _yaml(env: str, kind: str = "shell: env") -> spec.DagSpec:
    return yaml_dags.load_text(f"id: d\ntasks:\n  - id: a\n    {kind}\n    env: {env}\n")


def test_the_shell_gets_the_minimal_set_and_nothing_of_the_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATABASE_URL", "postgresql://u:planted-db-secret@h/db")
    monkeypatch.setenv("SOME_TOKEN", "planted-token")
    monkeypatch.setenv("TZ", "Europe/Paris")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    task = _yaml('{TARGET: warehouse, PATH: "/opt/bin:/usr/bin:/bin"}').tasks[0]
    out = operators.call(task, CTX.params, {}, CTX)
    got = dict(line.split("=", 1) for line in out.splitlines())
    assert got.pop("PWD")  # the shell sets these itself
    got.pop("SHLVL", None)
    got.pop("_", None)
    assert got == {
        "PATH": "/opt/bin:/usr/bin:/bin", "LANG": got["LANG"], "TZ": "Europe/Paris",
        **{k: got[k] for k in ("HOME", "LC_ALL", "TMPDIR") if k in got},
        "TARGET": "warehouse", "ORCH_DAG_ID": "d", "ORCH_RUN_ID": "r1", "ORCH_TASK_ID": "a",
        "ORCH_ATTEMPT": "2", "ORCH_PARAM_WORD": "hi", "ORCH_PARAM_N": "3",
        "ORCH_PARAM_CFG": '{"k": [1]}'}
    assert "planted" not in out


def test_path_and_lang_have_defaults_when_the_worker_has_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in operators.INHERITED:
        monkeypatch.delenv(name, raising=False)
    env = operators.shell_env(_yaml("{}").tasks[0], CTX)
    assert env["LANG"] == "C.UTF-8" and env["PATH"]
    assert "HOME" not in env


def test_identity_and_params_win_over_what_the_worker_has(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_TASK_ID", "forged")
    monkeypatch.setenv("ORCH_PARAM_WORD", "forged")
    env = operators.shell_env(_yaml("{}").tasks[0], CTX)
    assert (env["ORCH_TASK_ID"], env["ORCH_PARAM_WORD"]) == ("a", "hi")


@pytest.mark.parametrize(("env", "message"), [
    ("{1X: a}", "env name '1X' is not a variable name"),
    ('{"A B": a}', "env name 'A B' is not a variable name"),
    ('{"A=B": a}', "env name 'A=B' is not a variable name"),
    ('{"": a}', "env name '' is not a variable name"),
    ("{ORCH_DATABASE_URL: x}", "ORCH_* variables are set by the orchestrator"),
    ("{orch_x: x}", "ORCH_* variables are set by the orchestrator"),
    ("{X: 3}", "tasks.0.env.X: Input should be a valid string"),
    ("{X: null}", "tasks.0.env.X: Input should be a valid string"),
    ("{X: [a]}", "tasks.0.env.X: Input should be a valid string"),
    ('{X: "a\\0b"}', "env 'X' contains a NUL character"),
    ("[X]", "tasks.0.env: Input should be a valid dictionary"),
])
def test_bad_env_is_a_dag_error_naming_the_task_and_line(env: str, message: str) -> None:
    with pytest.raises(errors.DagError, match=r"^<yaml>:3: ") as raised:
        _yaml(env)
    assert message in str(raised.value)


def test_env_is_for_shell_tasks_only() -> None:
    with pytest.raises(errors.DagError, match="env is for shell tasks"):
        _yaml("{A: b}", kind="python: m:f")


def test_a_task_without_env_keeps_its_version() -> None:
    # Dumps without the key, as before `env` existed, so no DAG's version changes.
    plain = yaml_dags.load_text("id: d\ntasks:\n  - id: a\n    shell: echo\n")
    assert "env" not in compiled.canonical(plain)["tasks"][0]
    with_env = _yaml("{A: b}")
    assert compiled.canonical(with_env)["tasks"][0]["env"] == {"A": "b"}
    assert compiled.CompiledDag.of(plain).version != compiled.CompiledDag.of(with_env).version
    again = spec.DagSpec.model_validate(compiled.canonical(with_env))
    assert again.tasks[0].env == {"A": "b"}


def test_the_editor_schema_agrees_on_env() -> None:
    schema = json.loads(yaml_dags.SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)

    def ok(env: object) -> bool:
        return validator.is_valid({"id": "d", "tasks": [{"id": "a", "shell": "env",
                                                         "env": env}]})

    assert ok({"TARGET": "x", "_a1": ""})
    assert not ok({"ORCH_X": "x"}) and not ok({"1X": "x"}) and not ok({"X": 3})
