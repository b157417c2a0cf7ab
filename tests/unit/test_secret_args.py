"""Secret params and ``{secret: ...}`` arguments in both syntaxes: what they compile to,
what bad input gives (a DagError naming the file and line), what the task receives, how
a secret param is sealed, and that DAGs without secrets keep their version."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Secret, dag, errors, secret, task
from orchestrator.authoring import yaml_dags
from orchestrator.execution import operators, secret_refs, task_context
from orchestrator.model import compiled, params, sealed, spec
from orchestrator.model.secret_spec import SecretArg

KEY = "a-signing-key-for-the-unit-tests-0123456789"


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def uses(token: str, other: str = secret(env="UNIT_SECRET_DEFAULT")) -> str:
    return f"{token}|{other}"


def _yaml(args: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        id: secret_args
        params:
          api_key: {{type: string, secret: true}}
        tasks:
          - id: first
            shell: "true"
          - id: show
            python: tests.unit.test_secret_args:echo
            args: {args}
        """) + extra


def _ctx() -> task_context.TaskContext:
    return task_context.TaskContext("secret_args", "r" * 32, "show", 1, {})


def test_yaml_secret_refs_and_params_compile() -> None:
    s = yaml_dags.load_text(_yaml("[{secret: {env: UNIT_TOKEN}}, {secret: {file: /run/s}}, "
                                  "{param: api_key}]"))
    assert s.params["api_key"].secret is True
    assert s.task("show").args[:2] == (SecretArg(env="UNIT_TOKEN"), SecretArg(file="/run/s"))
    data = compiled.canonical(s)
    assert data["tasks"][1]["args"][0] == {"kind": "secret", "env": "UNIT_TOKEN", "file": None}
    assert data["params"]["api_key"]["secret"] is True
    back = spec.DagSpec.model_validate(data)  # what the store keeps reads back the same
    assert back.task("show").args == s.task("show").args and compiled.canonical(back) == data


def test_a_param_that_is_not_secret_keeps_its_stored_form() -> None:
    s = yaml_dags.load_text(_yaml("[1]").replace("{type: string, secret: true}",
                                                "{type: string, secret: false}"))
    assert "secret" not in compiled.canonical(s)["params"]["api_key"]


def test_python_secret_annotation_args_and_defaults() -> None:
    @dag
    def py_secrets(api_key: Secret, optional: Secret | None = None, n: int = 1) -> None:
        uses(api_key)
        uses(secret(file="/run/secrets/x"), other=secret(env="UNIT_OTHER"))

    p = py_secrets.spec.params
    assert (p["api_key"].secret, p["api_key"].type, p["api_key"].required) == (
        True, "string", True)
    assert p["optional"].secret and not p["n"].secret
    first, second = py_secrets.spec.tasks
    assert first.kwargs == {"other": SecretArg(env="UNIT_SECRET_DEFAULT")}  # the default
    assert second.args == (SecretArg(file="/run/secrets/x"),)
    assert second.kwargs == {"other": SecretArg(env="UNIT_OTHER")}


@pytest.mark.parametrize(("ref", "message"), [
    ("{vault: x}", "unknown secret source 'vault'"),
    ("{env: A, file: /b}", "takes exactly one of {env: NAME} or {file: PATH}, got ['env', "
                           "'file']"),
    ("{}", "takes exactly one of"),
    ("NAME", "takes exactly one of {env: NAME} or {file: PATH}, got str"),
    ("{env: 3}", "needs a name or a path, got 3"),
    ("{env: 'not a name'}", "is not a variable name"),
    ("{env: ORCH_SIGNING_KEY}", "ORCH_* variables are the orchestrator's own settings"),
    ("{file: relative/path}", "must be an absolute path"),
])
def test_a_bad_secret_ref_is_refused_at_load_naming_file_and_line(
        tmp_path: Path, ref: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_yaml(f"[{{secret: {ref}}}]"), encoding="utf-8")
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_file(path)
    e = info.value
    assert e.source == str(path) and e.line == 7  # the task's line: `- id: show`
    assert str(e).startswith(f"{path}:7: DAG 'secret_args': task 'show': ")
    assert message in str(e)


def test_a_bad_secret_env_value_of_a_shell_task_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(_yaml("[]", "  - id: sh\n    shell: echo\n    env: {T: {secret: {x: y}}}\n"),
                    encoding="utf-8")
    with pytest.raises(errors.DagError, match="unknown secret source 'x'") as info:
        yaml_dags.load_file(path)
    assert info.value.line == 10


@pytest.mark.parametrize(("param", "message"), [
    ("{type: string, secret: yes-please}", "secret must be true or false"),
    ("{type: string, secret: true, default: hunter2}", "is secret, so it cannot have a default"),
])
def test_bad_secret_params_are_refused(tmp_path: Path, param: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_yaml("[1]").replace("{type: string, secret: true}", param),
                    encoding="utf-8")
    with pytest.raises(errors.DagError, match=message) as info:
        yaml_dags.load_file(path)
    assert info.value.source == str(path)


def test_python_bad_secret_refs_are_dag_errors() -> None:
    with pytest.raises(errors.DagError, match="exactly one of"):
        secret(env="A", file="/b")
    with pytest.raises(errors.DagError, match="exactly one of"):
        secret()
    with pytest.raises(errors.DagError, match="cannot have a default"):
        @dag
        def with_default(api_key: Secret = "hunter2") -> None:  # type: ignore[assignment]
            uses(api_key)
    with pytest.raises(errors.DagError, match="not inside lists or dicts"):
        @dag
        def nested() -> None:
            uses([secret(env="X")])


def test_a_shell_task_takes_secrets_through_env_only() -> None:
    with pytest.raises(errors.DagError, match="a shell task takes no arguments"):
        spec.build({"id": "d", "tasks": [{"id": "a", "kind": "shell", "command": "true",
                                          "args": [{"kind": "secret", "env": "X"}]}]})


def test_the_task_receives_what_the_worker_read(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "token"
    f.write_text("from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("UNIT_TOKEN", "from-the-env")
    s = yaml_dags.load_text(_yaml(f"[{{secret: {{env: UNIT_TOKEN}}}}, "
                                  f"{{secret: {{file: {f}}}}}]"))
    show = s.task("show")
    assert operators.call(show, {}, {}, _ctx())["args"] == ["from-the-env", "from-a-file"]
    read = secret_refs.resolve_task(show)
    assert sorted(read.values()) == ["from-a-file", "from-the-env"]
    given = {ref: f"given-{i}" for i, ref in enumerate(show.args)}
    assert operators.call(show, {}, {}, _ctx(), secrets=given)["args"] == ["given-0", "given-1"]


def test_a_shell_tasks_env_gets_the_secret() -> None:
    s = yaml_dags.load_text(_yaml("[]", "  - id: sh\n    shell: echo\n"
                                        "    env: {T: {secret: {env: UNIT_SHELL}}, U: u}\n"))
    sh = s.task("sh")
    env = operators.shell_env(sh, _ctx(), {SecretArg(env="UNIT_SHELL"): "shell-secret"})
    assert env["T"] == "shell-secret" and env["U"] == "u"


def test_an_unreadable_secret_fails_naming_where_never_what(tmp_path: Path) -> None:
    os.environ.pop("UNIT_MISSING", None)
    with pytest.raises(errors.SecretUnavailable, match="'UNIT_MISSING' is not set"):
        secret_refs.resolve(SecretArg(env="UNIT_MISSING"))
    with pytest.raises(errors.SecretUnavailable, match="cannot be read: No such file"):
        secret_refs.resolve(SecretArg(file=str(tmp_path / "nope")))
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xffsecret-bytes")
    with pytest.raises(errors.SecretUnavailable) as info:
        secret_refs.resolve(SecretArg(file=str(binary)))
    assert "not UTF-8" in str(info.value) and "secret-bytes" not in str(info.value)


def test_secret_params_are_sealed_and_opened() -> None:
    s = yaml_dags.load_text(_yaml("[1]"))
    values = params.validate(s, {"api_key": "hunter2-value"})
    stored = sealed.seal_params(s, values, KEY)
    assert "hunter2" not in str(stored) and sealed.is_sealed(stored["api_key"])
    assert sealed.shown(stored) == {"api_key": "***"}
    again = sealed.seal_params(s, values, KEY)
    assert again != stored and sealed.comparable(again) == sealed.comparable(stored)
    other = sealed.seal_params(s, {"api_key": "other"}, KEY)
    assert sealed.comparable(other) != sealed.comparable(stored)
    assert sealed.unseal_params(s, stored, KEY) == ({"api_key": "hunter2-value"},
                                                    ["hunter2-value"])
    with pytest.raises(errors.ConfigError, match="another ORCH_SIGNING_KEY"):
        sealed.unseal_params(s, stored, KEY + "-rotated")


def test_a_secret_param_without_a_signing_key_is_refused() -> None:
    s = yaml_dags.load_text(_yaml("[1]"))
    with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY, which is not set"):
        sealed.seal_params(s, {"api_key": "v"}, None)
    assert sealed.seal_params(s, {"api_key": None}, None) == {"api_key": None}


def test_dags_without_secrets_keep_their_version() -> None:
    from tests.unit.test_context_args import PINNED, PINNED_VERSION

    assert compiled.CompiledDag.of(yaml_dags.load_text(PINNED)).version == PINNED_VERSION
