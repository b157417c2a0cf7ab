"""Settings by area: every documented variable works, the README's table is the truth,
and a stack recorded by `up` is found from its folder, below the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator import settings
from orchestrator.devstack import state
from tests.support import ROOT

# What earlier READMEs documented: each must keep working, forever.
DOCUMENTED = {
    "ORCH_BROKER_URL": ("broker", "url", "redis://:pw@h:1/0", "redis://:pw@h:1/0"),
    "ORCH_DATABASE_URL": ("database", "url", "sqlite:///x.db", "sqlite:///x.db"),
    "ORCH_DAGS_PATH": ("dags", "path", "elsewhere", Path("elsewhere")),
    "ORCH_DEFAULT_QUEUE": ("worker", "default_queue", "q", "q"),
    "ORCH_TASK_TIMEOUT_MAX": ("worker", "task_timeout_max", "100", 100.0),
    "ORCH_VISIBILITY_TIMEOUT": ("broker", "visibility_timeout", "7200", 7200.0),
    "ORCH_LEASE_SECONDS": ("worker", "lease_seconds", "7", 7.0),
    "ORCH_UNACKED_RESTORE_INTERVAL": ("broker", "unacked_restore_interval", "2", 2.0),
    "ORCH_WORKER_CONCURRENCY": ("worker", "concurrency", "3", 3),
    "ORCH_REQUEUE_AFTER": ("coordinator", "requeue_after", "9", 9.0),
    "ORCH_RECONCILE_INTERVAL": ("coordinator", "reconcile_interval", "0.5", 0.5),
    "ORCH_TASK_EVENTS": ("worker", "task_events", "true", True),
    "ORCH_FLOWER_PORT": ("flower", "port", "5999", 5999),
    "ORCH_FLOWER_USER": ("flower", "user", "ops", "ops"),
    "ORCH_FLOWER_PASSWORD": ("flower", "password", "s3cret", "s3cret"),
    "ORCH_TIME_LIMIT_GRACE": ("worker", "time_limit_grace", "4", 4.0),
    "ORCH_MAX_TASKS": ("dags", "max_tasks", "50", 50),
    "ORCH_MAX_MAP_ITEMS": ("dags", "max_map_items", "60", 60),
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("ORCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stack file here unless a test writes one


def test_the_readme_configuration_table_is_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings.markdown_table() in readme
    documented = {line.split("`")[1] for line in readme.splitlines()
                  if line.startswith("| `ORCH_")}
    assert documented == set(settings.variables())


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_documented_variable_still_works(monkeypatch: pytest.MonkeyPatch,
                                               name: str) -> None:
    area, field, raw, value = DOCUMENTED[name]
    monkeypatch.setenv(name, raw)
    assert getattr(getattr(settings.load(), area), field) == value


def test_field_names_never_read_unprefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PATH": "/usr/bin", "USER": "bob", "PORT": "1", "URL": "x",
                        "PASSWORD": "p"}.items():
        monkeypatch.setenv(name, value)
    s = settings.load()
    assert (s.dags.path, s.flower.user, s.flower.port, s.broker.url, s.flower.password) == (
        Path("dags"), "admin", 5555, None, None)


def test_as_env_gives_a_child_the_same_settings() -> None:
    s = settings.load().with_env(ORCH_BROKER_URL="redis://h/0", ORCH_LEASE_SECONDS=2,
                                 ORCH_TASK_EVENTS=True, ORCH_HOOKS="a:b, c:d")
    assert settings.Settings.from_env(s.as_env()) == s
    assert s.hooks.entries == ["a:b", "c:d"]


def test_bad_values_are_rejected_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        settings.load().with_env(ORCH_NOPE=1)
    with pytest.raises(ValidationError, match="ORCH_LEASE_SECONDS"):
        settings.Settings.from_env({"ORCH_LEASE_SECONDS": "-1"})
    with pytest.raises(ValidationError, match="must be above ORCH_TASK_TIMEOUT_MAX"):
        settings.Settings.from_env({"ORCH_VISIBILITY_TIMEOUT": "10"})


def test_a_stack_recorded_here_is_found_and_the_environment_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = state.StackState(broker_port=6400, env={
        "ORCH_BROKER_URL": "redis://:pw@127.0.0.1:6400/0",
        "ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}", "ORCH_NOT_A_SETTING": "x"})
    path = state.save(recorded, tmp_path)
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    found = settings.load()
    assert found.broker.url == "redis://:pw@127.0.0.1:6400/0"
    assert found.database.url == f"sqlite:///{tmp_path / 'o.db'}"
    assert settings.load(stack_file=False).broker.url is None  # what `up` itself reads
    # and a copy of it stays so: the stack file does not fill in what it left unset
    copy = settings.load(stack_file=False).with_env(ORCH_SIGNING_KEY="k" * 32)
    assert copy.broker.url is None and copy.security.signing_key == "k" * 32
    monkeypatch.setenv("ORCH_BROKER_URL", "redis://other:1/0")
    assert settings.load().broker.url == "redis://other:1/0"
    assert state.load(tmp_path) == recorded  # `up` comes back with the same credentials


def test_a_broken_stack_file_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / settings.STATE_DIR
    folder.mkdir()
    (folder / settings.STACK_FILE).write_text("{not json")
    assert settings.load().broker.url is None
    (folder / settings.STACK_FILE).write_text(json.dumps({"env": ["not", "a", "mapping"]}))
    assert settings.load().broker.url is None
    assert state.load(tmp_path).broker_port is None
