"""`orchestrator up` starts the server too: it prints the URL and where the operator token
it made for you is (never the token), the token works over real HTTP, the server listens
on 127.0.0.1 only, no process gets the token on its command line or in its environment,
a restart keeps the token while the database accepts it, and Ctrl-C stops the server
with the rest. The token's keeping is also tested on its own, against both databases."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from orchestrator.devstack import server as server_
from orchestrator.settings import STATE_DIR
from orchestrator.store import Store
from tests.security.leaks import descendants
from tests.support import ROOT, Up, alive, free_port, wait_until

pytestmark = pytest.mark.integration

LISTEN = "0A"  # TCP state in /proc/net/tcp


def _env(database_url: str, **extra: str) -> dict[str, str]:
    """A shell with nothing of ours exported but the database and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_DATABASE_URL": database_url, "ORCH_FLOWER_PORT": str(free_port()),
                "ORCH_SERVER_PORT": str(free_port()), **extra})
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "dags").mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "example.py", folder / "dags" / "example.py")
    return folder


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as the kernel shows them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.append(addr)
    return found


def _read(pid: int, what: str) -> str:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes().replace(b"\0", b"\n").decode(
            errors="replace")
    except OSError:
        return ""


def _dags(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{url}/api/v1/dags", headers=headers, timeout=30)


def test_up_serves_the_api_with_an_operator_token_it_keeps(project: Path, database_url: str,
                                                          store: Store) -> None:
    env = _env(database_url)
    url = f"http://127.0.0.1:{env['ORCH_SERVER_PORT']}"
    token_file = project / STATE_DIR / server_.TOKEN_FILE
    up = Up(project, env)
    try:
        assert up.ready(), up.output
        assert f"server   {url}" in up.output
        assert f"operator token in {token_file}" in up.output
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert token and token not in up.output

        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        answer = _dags(url, token)
        assert answer.status_code == 200, answer.text
        assert "example" in answer.text
        assert _dags(url, None).status_code == 401
        assert _dags(url, token[:-2] + "xx").status_code == 401
        found = store.principal(token)
        assert found is not None and (found.name, found.role) == ("local", "operator")

        port = int(env["ORCH_SERVER_PORT"])
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and nothing on IPv6
        children = descendants(up.proc.pid)
        servers = [p for p in children if "orchestrator\nserver" in _read(p, "cmdline")]
        assert len(servers) == 1, [_read(p, "cmdline") for p in children]
        server_env = _read(servers[0], "environ").splitlines()
        flower = f"ORCH_FLOWER_URL=http://127.0.0.1:{env['ORCH_FLOWER_PORT']}"
        assert flower in server_env
        assert not any(v.startswith("ORCH_FLOWER_PASSWORD=") for v in server_env)
        for pid in children:  # the token is kept in its file, and nowhere else
            assert token not in _read(pid, "cmdline") + _read(pid, "environ"), pid
    finally:
        up.stop()
    assert up.proc.returncode in (0, 130), up.output
    wait_until(lambda: not any(alive(p) for p in children), timeout=30,
               what="every process `up` started to stop")
    assert _listening(port) == []

    again = Up(project, env)
    try:
        assert again.ready(), again.output
        assert token_file.read_text().strip() == token  # still valid: the same one
        assert _dags(url, token).status_code == 200
        store.revoke_token("local")
        assert _dags(url, token).status_code == 401
    finally:
        again.stop()
    assert token not in again.output


def test_up_stops_and_says_so_when_the_servers_port_is_taken(project: Path,
                                                              database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "up"], cwd=project,
                                env=_env(database_url, ORCH_SERVER_PORT=str(port)), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 2, out + err
    assert f"the server cannot start: port {port} on 127.0.0.1 is taken" in err
    assert "server   http" not in out
    assert not (project / STATE_DIR / server_.TOKEN_FILE).exists()


def test_the_local_token_is_kept_while_valid_and_replaced_when_not(tmp_path: Path,
                                                                   store: Store) -> None:
    folder = tmp_path / STATE_DIR
    path = server_.local_token(store, folder)
    assert path == folder / server_.TOKEN_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text().strip()
    found = store.principal(first)
    assert found is not None and (found.name, found.role) == ("local", "operator")

    path.chmod(0o644)
    assert server_.local_token(store, folder).read_text().strip() == first  # reused
    assert path.stat().st_mode & 0o777 == 0o600

    store.revoke_token("local")
    second = server_.local_token(store, folder).read_text().strip()
    assert second != first and store.principal(first) is None
    assert store.principal(second) is not None

    path.write_text("not a token\n")  # lost: the live "local" goes, a new one comes
    third = server_.local_token(store, folder).read_text().strip()
    assert third != second and store.principal(second) is None
    assert store.principal(third) is not None

    _, viewer = store.create_token(f"viewer-{uuid.uuid4().hex[:8]}", "viewer")
    path.write_text(viewer)  # a viewer's token is not the operator token up promises
    fourth = server_.local_token(store, folder).read_text().strip()
    assert fourth not in (viewer, third)
    found = store.principal(fourth)
    assert found is not None and found.role == "operator"
    assert store.principal(viewer) is not None  # someone else's token is left alone
    live = [t for t in store.list_tokens() if t.name == "local" and t.revoked_at is None]
    assert len(live) == 1
