"""Starts and always stops a local deployment: embedded broker, workers, coordinators,
Flower, the server.

Used by ``orchestrator up`` (until Ctrl-C), ``orchestrator quickstart`` (``make run``),
the tests and the benchmark. It owns the whole stack, so it brings the database schema
up to date itself. Every process binds 127.0.0.1 and is stopped on exit, also when this
process is ended by SIGTERM; a component that fails to start stops the rest and raises.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Sequence

from orchestrator.devstack import flower as flower_
from orchestrator.devstack import server as server_
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.processes import (
    Worker,
    exit_on_sigterm,
    spawn,
    terminate,
    wait_for_workers,
)
from orchestrator.settings import Settings
from orchestrator.store import Store


class LocalStack:
    """``with LocalStack(settings) as stack:`` gives ``stack.settings`` with a broker URL.

    ``broker_port``/``broker_password`` pin the embedded broker (``up`` keeps them across
    restarts); ``flower_password`` and ``signing_key`` likewise. Without a signing key in
    ``settings`` the stack makes one. ``server``: ``orchestrator server`` too, on
    ``settings.server.port``, linking to the Flower this stack starts unless
    ORCH_FLOWER_URL says otherwise."""

    def __init__(self, settings: Settings, *, workers: int = 1, concurrency: int = 2,
                 flower: bool = False, coordinator: bool = False, server: bool = False,
                 log_dir: str | None = None, broker_port: int | None = None,
                 broker_password: str | None = None,
                 flower_password: str | None = None, signing_key: str | None = None) -> None:
        if not settings.security.signing_key:
            settings = settings.with_env(
                ORCH_SIGNING_KEY=signing_key or secrets.token_urlsafe(32))
        self.base = settings
        self.settings = settings
        self.n_workers = workers
        self.concurrency = concurrency
        self.flower = flower
        self.log_dir = log_dir
        self.broker: EmbeddedBroker | None = None
        self._broker_port, self._broker_password = broker_port, broker_password
        self.workers: list[Worker] = []
        self.flower_proc: subprocess.Popen[bytes] | None = None
        self.flower_password = settings.flower.password or flower_password
        self.coordinator = coordinator
        self.coordinators: list[subprocess.Popen[bytes]] = []
        self.server = server
        self.server_proc: subprocess.Popen[bytes] | None = None
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

    def _log(self, name: str) -> str | None:
        return os.path.join(self.log_dir, name) if self.log_dir else None

    def start(self) -> None:
        store = Store(self.base.database.url)
        try:
            store.upgrade()  # this stack owns its database: migrating it is its job
        finally:
            store.dispose()
        if self.flower:
            # Workers send events from their first task, so Flower misses none.
            self.settings = self.settings.with_env(ORCH_TASK_EVENTS=True)
        if not self.base.broker.url:
            self.broker = EmbeddedBroker(self._broker_port, self._broker_password)
            self.settings = self.settings.with_env(ORCH_BROKER_URL=self.broker.start())
        url = self.settings.broker.url
        assert url is not None
        for i in range(self.n_workers):
            self.add_worker(f"w{i}-{os.getpid()}", wait=False)
        wait_for_workers(url, self.settings, [w.name for w in self.workers],
                         procs=[w.proc for w in self.workers])
        if self.flower:
            self.flower_password = self.flower_password or secrets.token_urlsafe(12)
            self.flower_proc = flower_.start(self.settings, url, self.flower_password,
                                             self._log("flower.log"))
        if self.coordinator:
            self.start_coordinator()
        if self.server:
            if self.flower and not self.base.server.flower_url:
                self.settings = self.settings.with_env(
                    ORCH_FLOWER_URL=f"http://127.0.0.1:{self.settings.flower.port}")
            self.server_proc = server_.start(self.settings, self._log("server.log"))

    def start_coordinator(self) -> subprocess.Popen[bytes]:
        """Start one more ``orchestrator coordinator`` (several may run at once)."""
        proc = spawn(["orchestrator", "coordinator"], self.settings,
                     log_path=self._log(f"coordinator-{len(self.coordinators)}.log"))
        self.coordinators.append(proc)
        return proc

    def add_worker(self, name: str, *, wait: bool = True, queues: Sequence[str] = (),
                   concurrency: int | None = None) -> Worker:
        w = Worker(self.settings, name=name, concurrency=concurrency or self.concurrency,
                   queues=queues, log_path=self._log(f"{name}.log"))
        self.workers.append(w)
        if wait:
            assert self.settings.broker.url is not None
            wait_for_workers(self.settings.broker.url, self.settings, [name], procs=[w.proc])
        return w

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers.clear()
        for proc in [self.server_proc, self.flower_proc, *self.coordinators]:
            if proc is not None:
                terminate(proc)
        self.server_proc = self.flower_proc = None
        self.coordinators.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self._old_handler is not None:
            signal.signal(signal.SIGTERM, self._old_handler)  # type: ignore[arg-type]
            self._old_handler = None
