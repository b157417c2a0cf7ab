"""Whether anything sent is still in flight: on the broker's queues, unacknowledged, or
held by a worker (running, reserved, or waiting out a countdown). A test that made a
broker deliver something again waits for this before it counts what happened."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from orchestrator.settings import Settings
from orchestrator.transport.dispatch import make_producer_app

_UNACKED = "unacked"
"""kombu's hash of the messages delivered and not acknowledged yet (acks_late)."""
_INSPECT_S = 1.0


class InFlight:
    """``busy(workers)``: what is still in flight, or None when nothing is."""

    def __init__(self, settings: Settings, queues: Sequence[str]) -> None:
        url = settings.broker.url or ""
        self.queues = tuple(queues)
        self._app = make_producer_app(settings, url)
        self._redis = redis.Redis.from_url(url)

    def busy(self, workers: int) -> str | None:
        """``workers``: how many workers must answer (a killed one never does)."""
        for queue in self.queues:
            queued = self._redis.llen(queue)
            if queued:
                return f"{queued} message(s) queued on {queue!r}"
        if self._redis.hlen(_UNACKED):
            return "messages delivered and not acknowledged yet"
        inspect = self._app.control.inspect(timeout=_INSPECT_S, limit=workers)
        for what, ask in (("running", inspect.active), ("reserved", inspect.reserved),
                          ("scheduled", inspect.scheduled)):
            answer = ask() or {}
            if len(answer) < workers:
                return f"{workers - len(answer)} worker(s) did not answer"
            if any(answer.values()):
                return f"a worker has tasks {what}"
        return None

    def close(self) -> None:
        self._redis.close()
        self._app.close()
