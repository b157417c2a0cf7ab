"""Keeps the lease of the attempt a worker process is running alive.

A lease that stops being renewed is how the rest of the system learns that a worker
died mid-task (SIGKILL, OOM, lost machine): the next delivery of its message, after the
lease expires, takes over as a new attempt.
"""

from __future__ import annotations

import logging
import threading

from orchestrator.store import Store

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self._current: tuple[str, str, int, str | None] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orchestrator-heartbeat",
                                        daemon=True)
        self._thread.start()

    def watch(self, run_id: str, task_id: str, attempt: int, token: str | None) -> None:
        with self._lock:
            self._current = (run_id, task_id, attempt, token)

    def clear(self) -> None:
        with self._lock:
            self._current = None

    def _loop(self) -> None:
        while not self._wake.wait(self.lease_seconds / 3):
            with self._lock:
                current = self._current
            if current is None:
                continue
            try:
                self.store.renew_lease(*current, lease_seconds=self.lease_seconds)
            except Exception:  # keep beating: one failed renewal is not a lost worker
                log.exception("could not renew the lease of %s", current)
