"""The coordinator's notifier: drains the outbox and marks missed deadlines.

Any number of coordinators run one. Each takes due notifications under a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer), makes one try of
each, and records it; a try that fails is due again after a backoff that doubles, up to
``ORCH_ALERT_MAX_TRIES``. A coordinator killed mid-send leaves its lease to run out,
and the next one sends again with the same event id: delivery is at least once, and
receivers dedupe on ``X-Orchestrator-Event-Id``. A commit that writes a notification
publishes a wake-up, so the notifier does not wait for its interval to pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis

from orchestrator import errors
from orchestrator.coordinator.channels import Channels, Undelivered
from orchestrator.observability.masking import Masker
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.store.results import Outgoing
from orchestrator.transport import wakeups

log = logging.getLogger(__name__)

BATCH = 50
SENDERS = 8
"""Tries made at once: a receiver that hangs holds one sender, not the outbox."""
MAX_BACKOFF = 600.0
STOP_SLICE = 0.2
"""Seconds the notifier waits for a wake-up before it looks whether it should stop."""


class Notifier:
    def __init__(self, settings: Settings, store: Store, name: str, masker: Masker,
                 send_callback: Callable[[Outgoing], None]) -> None:
        self.settings = settings.alerts
        self.store = store
        self.name = name
        self._send_callback = send_callback
        server = settings.server
        self.channels = Channels(self.settings, masker, self.settings.public_url
                                 or f"http://{server.host}:{server.port}")
        self.lease = self.settings.timeout * 3 + 5
        """Longer than a try can take (an SMTP exchange is a few timeouts), so a slow
        receiver is never sent to twice by two coordinators."""
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="notifier")

    def tick(self) -> int:
        """Mark missed deadlines, then make one try of everything due. Returns the tries."""
        self.store.miss_deadlines()
        made = 0
        while True:
            batch = self.store.claim_notifications(self.name, limit=BATCH, lease=self.lease)
            if not batch:
                return made
            list(self._pool.map(self.deliver, batch))
            made += len(batch)
            if len(batch) < BATCH:
                return made

    def deliver(self, out: Outgoing) -> None:
        try:
            if out.channel == "callback":
                # a worker runs it and records how it went (or the lease runs out)
                self._send_callback(out)
                return
            status = self.channels.deliver(out)
        except Undelivered as exc:
            self._failed(out, exc.detail, exc.status, again=exc.again)
        except errors.TransportError as exc:
            self._failed(out, f"cannot send the callback: {exc}", None, again=True)
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("alert %s: try %s failed", out.id, out.tries)
            self._failed(out, f"{type(exc).__name__}", None, again=True)
        else:
            self.store.finish_notification(out, delivered=True, status=status)
            log.info("alert %s (%s %s of run %s) delivered by %s", out.id, out.event,
                     out.channel, out.run_id, self.name)

    def _failed(self, out: Outgoing, detail: str, status: int | None, *, again: bool) -> None:
        retry_at = None
        if again and out.tries < self.settings.max_tries:
            delay = min(self.settings.backoff * 2 ** (out.tries - 1), MAX_BACKOFF)
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        self.store.finish_notification(out, delivered=False, status=status, detail=detail,
                                       retry_at=retry_at)
        log.warning("alert %s (%s %s of run %s): try %s: %s%s", out.id, out.event,
                    out.channel, out.run_id, out.tries, detail,
                    "" if retry_at else " (given up)")

    def run(self, stop: threading.Event, broker_url: str | None) -> None:
        """Until ``stop``: a pass every interval, and at once when a commit wakes it."""
        sub = None
        if broker_url:
            with contextlib.suppress(redis.RedisError):
                sub = wakeups.subscribe(broker_url, wakeups.ALERTS)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # the database is down: the next pass tries again
                    log.exception("notifier pass failed")
                self._wait(sub, stop)
        finally:
            self._pool.shutdown(wait=True)
            if sub is not None:
                with contextlib.suppress(redis.RedisError):
                    sub.close()

    def _wait(self, sub: object, stop: threading.Event) -> None:
        interval = self.settings.interval
        if sub is None:
            stop.wait(interval)
            return
        until = time.monotonic() + interval
        try:
            # in slices, so a stopping coordinator is not held up by a whole interval
            while not stop.is_set() and (left := until - time.monotonic()) > 0:
                if sub.get_message(timeout=min(left, STOP_SLICE)) is not None:  # type: ignore[attr-defined]
                    while sub.get_message(timeout=0) is not None:  # type: ignore[attr-defined]
                        pass  # one pass serves every wake-up that came meanwhile
                    return
        except redis.RedisError:
            stop.wait(interval)
