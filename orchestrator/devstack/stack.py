"""Starts and always stops a local deployment: embedded broker, workers, Flower.

Used by ``orchestrator up`` (until Ctrl-C), ``orchestrator quickstart`` (``make run``),
the tests and the benchmark. Every process binds 127.0.0.1 and is stopped on exit,
also when this process is ended by SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Sequence

from orchestrator import errors
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.settings import Settings
from orchestrator.transport import dispatch

READY_TIMEOUT_S = 60.0


def die_with_parent() -> None:
    # Linux: the child gets SIGTERM when its parent dies, so a killed launcher does not
    # leave workers behind. Elsewhere this is a no-op.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        key = f"ORCH_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Worker:
    """One ``orchestrator worker`` process (a Celery prefork worker) and its pool."""

    def __init__(self, settings: Settings, *, name: str, concurrency: int = 1,
                 queues: Sequence[str] = (), log_path: str | None = None) -> None:
        cmd = [sys.executable, "-m", "orchestrator", "worker", "--concurrency",
               str(concurrency), "--hostname", f"{name}@%h"]
        if queues:
            cmd += ["--queues", ",".join(queues)]
        self.name = name
        self._log = open(log_path, "ab") if log_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=settings_env(settings), start_new_session=True,
                                     stdout=self._log or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

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
        if self._log:
            self._log.close()
            self._log = None


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


class LocalStack:
    """``with LocalStack(settings) as stack:`` gives ``stack.settings`` with a broker URL."""

    def __init__(self, settings: Settings, *, workers: int = 1, concurrency: int = 2,
                 flower: bool = False, coordinator: bool = False,
                 log_dir: str | None = None) -> None:
        self.base = settings
        self.settings = settings
        self.n_workers = workers
        self.concurrency = concurrency
        self.flower = flower
        self.log_dir = log_dir
        self.broker: EmbeddedBroker | None = None
        self.workers: list[Worker] = []
        self.flower_proc: subprocess.Popen[bytes] | None = None
        self.coordinator = coordinator
        self.coordinators: list[subprocess.Popen[bytes]] = []
        self.flower_password: str | None = None
        self._old_handler: object = None

    def __enter__(self) -> LocalStack:
        if threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGTERM, exit_on_sigterm)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.flower:
            # Workers send events from their first task, so Flower misses none.
            self.settings = self.settings.model_copy(update={"task_events": True})
        if not self.base.broker_url:
            self.broker = EmbeddedBroker()
            self.settings = self.settings.model_copy(update={"broker_url": self.broker.start()})
        url = self.settings.broker_url
        assert url is not None
        for i in range(self.n_workers):
            self.add_worker(f"w{i}-{os.getpid()}", wait=False)
        wait_for_workers(url, self.settings, [w.name for w in self.workers],
                         procs=[w.proc for w in self.workers])
        if self.flower:
            self._start_flower(url)
        if self.coordinator:
            self.start_coordinator()

    def start_coordinator(self) -> subprocess.Popen[bytes]:
        """Start one more ``orchestrator coordinator`` (several may run at once)."""
        name = f"coordinator-{len(self.coordinators)}.log"
        log = (open(os.path.join(self.log_dir, name), "ab")  # noqa: SIM115
               if self.log_dir else None)
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "coordinator"],
                                env=settings_env(self.settings), start_new_session=True,
                                preexec_fn=die_with_parent, stdout=log or subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
        if log:
            log.close()  # the child holds its own descriptor
        self.coordinators.append(proc)
        return proc

    def add_worker(self, name: str, *, wait: bool = True, queues: Sequence[str] = (),
                   concurrency: int | None = None) -> Worker:
        log = os.path.join(self.log_dir, f"{name}.log") if self.log_dir else None
        w = Worker(self.settings, name=name, concurrency=concurrency or self.concurrency,
                   queues=queues, log_path=log)
        self.workers.append(w)
        if wait:
            assert self.settings.broker_url is not None
            wait_for_workers(self.settings.broker_url, self.settings, [name], procs=[w.proc])
        return w

    def _start_flower(self, url: str) -> None:
        self.flower_password = self.settings.flower_password or secrets.token_urlsafe(12)
        cmd = [sys.executable, "-m", "celery", "--broker", url, "flower",
               "--address=127.0.0.1", f"--port={self.settings.flower_port}",
               f"--basic-auth={self.settings.flower_user}:{self.flower_password}"]
        self.flower_proc = subprocess.Popen(cmd, start_new_session=True,
                                            preexec_fn=die_with_parent,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers.clear()
        for proc in [self.flower_proc, *self.coordinators]:
            if proc is not None:
                _terminate(proc)
        self.flower_proc = None
        self.coordinators.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self._old_handler is not None:
            signal.signal(signal.SIGTERM, self._old_handler)  # type: ignore[arg-type]
            self._old_handler = None


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def exit_on_sigterm(_signum: int, _frame: types.FrameType | None) -> None:
    # Turn SIGTERM into SystemExit so every `finally` and `with` runs its cleanup.
    raise SystemExit(143)
