"""``orchestrator server`` for a local stack: a child process on a port checked free first,
waited for until ``/healthz`` answers, and the operator token ``up`` keeps for its user.

The server gets its settings (database and broker URLs, signing key) through its
environment like every other child, never its command line. It needs no Flower password:
that one is left out.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator import errors
from orchestrator.devstack import processes
from orchestrator.devstack.flower import port_free
from orchestrator.settings import Settings
from orchestrator.store import Store

START_TIMEOUT_S = 60.0
TOKEN_FILE = "token"
TOKEN_NAME = "local"
"""The name of the operator token ``up`` makes for the local user (``tokens list`` shows it)."""
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def address(settings: Settings) -> str:
    """Where a browser on this machine reaches the server."""
    host = settings.server.host
    if host in WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def start(settings: Settings, log_path: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``orchestrator server`` on ``settings.server.port`` and wait until it answers;
    raise, naming the cause, if it does not (a taken port is told before anything starts)."""
    port = settings.server.port
    if settings.server.host in {"127.0.0.1", "localhost", *WILDCARDS} and not port_free(port):
        raise errors.OrchestratorError(
            f"the server cannot start: port {port} on 127.0.0.1 is taken (set "
            "ORCH_SERVER_PORT to a free one, or run `up --no-server`)")
    proc = processes.spawn(["orchestrator", "server", "--port", str(port)], settings,
                           log_path=log_path, without=("ORCH_FLOWER_PASSWORD",))
    url = address(settings) + "/healthz"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise errors.OrchestratorError(
                f"the server exited with status {proc.returncode} while starting"
                + (f" (see {log_path})" if log_path else ""))
        if _answers(url):
            return proc
        time.sleep(0.2)
    processes.terminate(proc)
    raise errors.OrchestratorError(f"the server did not answer on {url} within "
                                   f"{START_TIMEOUT_S:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def local_token(store: Store, folder: Path) -> Path:
    """The local user's operator token, in ``folder/token`` (owner-only): the one kept
    there while the database still accepts it as an operator's, else a new one. Returns
    the file's path; the token itself is never returned, so no caller can print it."""
    path = folder / TOKEN_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        kept = ""
    if kept:
        found = store.principal(kept)
        if found is not None and found.role == "operator":
            path.chmod(0o600)
            return path
    # A live "local" token whose secret this folder no longer holds (the file deleted or
    # replaced) lets in only whoever copied that file: it goes, and a new one takes its
    # name (names of live tokens are unique).
    with contextlib.suppress(errors.UnknownToken):
        store.revoke_token(TOKEN_NAME)
    _, token = store.create_token(TOKEN_NAME, "operator")
    folder.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return path


def ensure_token(database_url: str, folder: Path) -> Path:
    """:func:`local_token` with a store of its own."""
    store = Store(database_url)
    try:
        return local_token(store, folder)
    finally:
        store.dispose()
