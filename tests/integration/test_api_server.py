"""``orchestrator server`` and ``orchestrator tokens`` as a user runs them: real processes,
real HTTP on a free loopback port, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.client import Client
from orchestrator.settings import Settings
from tests.api_support import API, api, problem
from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(settings.as_env(), ORCH_TEST_LEDGER_DIR=os.environ["ORCH_TEST_LEDGER_DIR"])
    return env


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT,
                          env=_env(settings), capture_output=True, text=True, timeout=120,
                          check=False)


def test_tokens_create_list_revoke(client: Client) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    made = _cli(client.settings, "tokens", "create", "--role", "viewer", "--name", name)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orch_"), made.stdout  # scripts capture it
    secret = lines[0]
    assert secret not in made.stderr and name in made.stderr
    with api(client, secret) as http:
        assert http.get(f"{API}/dags").status_code == 200
        problem(http.post(f"{API}/runs/{'0' * 32}/cancel"), 403)  # a viewer
        listed = _cli(client.settings, "tokens", "list")
        assert listed.returncode == 0, listed.stderr
        assert name in listed.stdout and "viewer" in listed.stdout
        as_json = _cli(client.settings, "tokens", "list", "--json")
        mine = [t for t in json.loads(as_json.stdout) if t["name"] == name]
        assert len(mine) == 1 and mine[0]["last_used_at"] and mine[0]["revoked_at"] is None
        assert set(mine[0]) == {"id", "name", "role", "created_at", "last_used_at",
                                "revoked_at"}
        stored = client.store.principal(secret)
        assert stored is not None
        for out in (listed.stdout + listed.stderr, as_json.stdout + as_json.stderr):
            assert secret not in out and _digest(secret) not in out
        again = _cli(client.settings, "tokens", "create", "--role", "operator", "--name", name)
        assert again.returncode == 2 and "exists already" in again.stderr
        assert not again.stdout
        for bad in (["--role", "admin"], ["--role", "viewer", "--name", ""]):
            refused = _cli(client.settings, "tokens", "create", *bad)
            assert refused.returncode == 2 and not refused.stdout, refused
        revoked = _cli(client.settings, "tokens", "revoke", name)
        assert revoked.returncode == 0, revoked.stderr
        problem(http.get(f"{API}/dags"), 401)
        gone = _cli(client.settings, "tokens", "revoke", name)
        assert gone.returncode == 2 and "no live token" in gone.stderr
        listed = json.loads(_cli(client.settings, "tokens", "list", "--json").stdout)
        assert [t["revoked_at"] is not None for t in listed if t["name"] == name] == [True]


def _digest(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


@pytest.fixture
def server(client: Client, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "server", "--port",
                             str(port)], cwd=ROOT, env=_env(client.settings), text=True,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_server_answers_over_http_and_stops_on_ctrl_c(
        client: Client, server: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    url, proc = server
    wait_until(lambda: _answers(f"{url}/healthz") or proc.poll() is not None, timeout=60,
               what="the server to answer /healthz")
    assert proc.poll() is None, (tmp_path / "server.log").read_text()
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "database": "ok"}
    _, secret = client.store.create_token(f"srv-{uuid.uuid4().hex[:8]}", "operator")
    with httpx.Client(base_url=url, timeout=30) as http:
        problem(http.get(f"{API}/runs"), 401)
        r = http.get(f"{API}/runs", params={"limit": 1},
                     headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200 and "runs" in r.json(), r.text
        r = http.post(f"{API}/dags/api_quick/runs", json={"params": {"n": 3}},
                      headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 201, r.text
    assert client.wait(r.json()["run_id"], timeout=60).state == "success"
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    out = (tmp_path / "server.log").read_text()
    assert f"orchestrator server on {url}" in out
    assert secret not in out and "Traceback" not in out
    assert not _answers(f"{url}/healthz")


def test_the_server_refuses_a_schema_that_is_behind(client: Client, tmp_path: Path) -> None:
    empty = client.settings.with_env(ORCH_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "server", "--port",
                           str(free_port())], cwd=ROOT, env=_env(empty), text=True,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 2, proc
    assert "orchestrator db upgrade" in proc.stderr and "Traceback" not in proc.stderr
