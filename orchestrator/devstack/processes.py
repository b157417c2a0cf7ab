"""Child processes of a local stack: started in their own session, stopped by PID.

Every child gets its settings through its environment (never its command line, which
``ps`` shows to every local user) and dies with its parent on Linux.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Sequence

from orchestrator import errors
from orchestrator.settings import Settings, child_env
from orchestrator.transport import dispatch

READY_TIMEOUT_S = 60.0


def die_with_parent() -> None:
    # Linux: the child gets SIGTERM when its parent dies, so a killed launcher does not
    # leave workers behind. Elsewhere this is a no-op.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: Sequence[str], settings: Settings, *, log_path: str | None = None,
          extra_env: dict[str, str] | None = None,
          without: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start ``python -m <args>`` with these settings (less the variables ``without``),
    its output to ``log_path``."""
    env = {**child_env(settings), **(extra_env or {})}
    for name in without:
        env.pop(name, None)
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 -- the child keeps it
    try:
        return subprocess.Popen([sys.executable, "-m", *args], env=env, start_new_session=True,
                                stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
    finally:
        if log:
            log.close()


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaps it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


class Worker:
    """One ``orchestrator worker`` process (a Celery prefork worker) and its pool."""

    def __init__(self, settings: Settings, *, name: str, concurrency: int = 1,
                 queues: Sequence[str] = (), log_path: str | None = None) -> None:
        args = ["orchestrator", "worker", "--concurrency", str(concurrency),
                "--hostname", f"{name}@%h"]
        if queues:
            args += ["--queues", ",".join(queues)]
        self.name = name
        self.proc = spawn(args, settings, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown (SIGTERM: finish the running task), then SIGKILL what is left."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def wait_for_workers(broker_url: str, settings: Settings, names: Sequence[str],
                     timeout: float = READY_TIMEOUT_S,
                     procs: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    """Block until every named worker answers a ping."""
    app = dispatch.make_producer_app(settings, broker_url)
    deadline = time.monotonic() + timeout
    want = set(names)
    try:
        while time.monotonic() < deadline:
            for p in procs:
                if p.poll() is not None:
                    raise errors.OrchestratorError(f"a worker exited with status {p.returncode}"
                                                   " during startup (see its log)")
            replies = app.control.ping(timeout=0.5) or []
            seen = {name.split("@")[0] for r in replies for name in r}
            if want <= seen:
                return
        raise errors.OrchestratorError(f"workers {sorted(want)} did not start in {timeout} s")
    finally:
        app.close()


def exit_on_sigterm(_signum: int, _frame: types.FrameType | None) -> None:
    # Turn SIGTERM into SystemExit so every `finally` and `with` runs its cleanup.
    raise SystemExit(143)
