"""`orchestrator pools set|list|delete` against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from orchestrator import cli, errors

pytestmark = pytest.mark.integration


def test_pools_set_list_delete(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATABASE_URL", database_url)
    runner = CliRunner()
    name = f"pools_cli_{uuid.uuid4().hex[:8]}"
    made = runner.invoke(cli.app, ["pools", "set", name, "--slots", "2",
                                   "--description", "two at a time"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli.app, ["pools", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    mine = [p for p in json.loads(listed.stdout) if p["name"] == name]
    assert mine == [{"name": name, "slots": 2, "used": 0, "queued": 0, "running": 0,
                     "waiting": 0, "description": "two at a time"}]
    table = runner.invoke(cli.app, ["pools", "list"])
    assert table.exit_code == 0 and name in table.stdout and "default" in table.stdout
    unbounded = runner.invoke(cli.app, ["pools", "set", name])
    assert unbounded.exit_code == 0, unbounded.output
    listed = runner.invoke(cli.app, ["pools", "list", "--json"])
    assert [p["slots"] for p in json.loads(listed.stdout) if p["name"] == name] == [None]
    gone = runner.invoke(cli.app, ["pools", "delete", name])
    assert gone.exit_code == 0, gone.output
    again = runner.invoke(cli.app, ["pools", "delete", name])
    assert isinstance(again.exception, errors.UnknownPool)
    default = runner.invoke(cli.app, ["pools", "delete", "default"])
    assert isinstance(default.exception, errors.Conflict)
    bad = runner.invoke(cli.app, ["pools", "set", name, "--slots", "-1"])
    assert isinstance(bad.exception, errors.InvalidArgument)
