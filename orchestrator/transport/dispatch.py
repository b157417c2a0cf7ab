"""Sends node attempts to workers.

A dispatched node goes out as the chain of its segment (``plan.segment_from``); several
ready segments go out together as a group. Each message names one node attempt
(dag, task, run, attempt) and never carries code or upstream data: O(segment) bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.utils.url import maybe_sanitize_url

from orchestrator import errors
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.transport.celery_config import celery_config
from orchestrator.transport.signing import KWARG, Signer

CALLBACK = "orchestrator:callback"
"""The task that runs DAG and task callbacks (never a ``<dag>.<task>`` name)."""


def task_name(dag_id: str, task_id: str) -> str:
    """The Celery task name Flower shows: ``<dag_id>.<task_id>``."""
    return f"{dag_id}.{task_id}"


def safe_url(url: str | None) -> str:
    """A broker URL fit for a message: its password masked."""
    return str(maybe_sanitize_url(url, mask="***")) if url else "(ORCH_BROKER_URL is not set)"


def make_producer_app(settings: Settings, broker_url: str) -> Celery:
    app = Celery("orchestrator", set_as_current=False)
    app.conf.update(celery_config(settings, broker_url))
    return app


class Dispatcher:
    """Sends node attempts through Celery, and terminates running ones; every message
    signed (ConfigError naming ORCH_SIGNING_KEY here, before anything is sent, without
    a key). ``mask``: applied to the arguments Celery shows (its events, Flower)."""

    def __init__(self, app: Celery, settings: Settings,
                 mask: Callable[[str], str] = str) -> None:
        self.app = app
        self.mask = mask
        self.signer = Signer.of(settings)
        self.default_queue = settings.worker.default_queue
        self.time_limit_grace = settings.worker.time_limit_grace

    def signature(self, dag: CompiledDag, run_id: str, task_id: str, attempt: int) -> Signature:
        t = dag.spec.task(task_id)
        # What Celery's events and Flower show of the message: its ids, not the signature,
        # set here rather than left to Celery's repr of whatever the kwargs hold.
        shown = {"dag": dag.id, "task": task_id, "run": run_id, "attempt": attempt}
        options: dict[str, Any] = {"queue": t.queue or self.default_queue, "argsrepr": "()",
                                   "kwargsrepr": self.mask(repr(shown))}
        hard = soft = None
        if t.timeout is not None:
            soft = options["soft_time_limit"] = t.timeout
            hard = options["time_limit"] = t.timeout + self.time_limit_grace
        name = task_name(dag.id, t.celery_name)
        sig = self.signer.task(name, dag.id, task_id, run_id, attempt, hard, soft)
        return self.app.signature(
            name, kwargs={"dag": dag.id, "task": task_id, "run": run_id, "attempt": attempt,
                          KWARG: sig},
            immutable=True, **options)

    def segment(self, dag: CompiledDag, run_id: str, head: str,
                attempts: Mapping[str, int]) -> Signature:
        nodes = dag.plan.segment_from(head)
        sigs = [self.signature(dag, run_id, n, attempts.get(n, 1)) for n in nodes]
        return sigs[0] if len(sigs) == 1 else chain(*sigs)

    def send(self, dag: CompiledDag, run_id: str, heads: Sequence[tuple[str, int]],
             tail_attempts: Mapping[str, int] | None = None,
             countdown: float | None = None) -> None:
        """Send the segments starting at ``heads`` (task id, attempt)."""
        if not heads:
            return
        attempts = dict(tail_attempts or {})
        attempts.update(heads)
        sigs = [self.segment(dag, run_id, h, attempts) for h, _ in heads]
        options = {"countdown": countdown} if countdown else {}
        try:
            if len(sigs) == 1:
                sigs[0].apply_async(**options)
            else:
                group(sigs).apply_async(**options)
        except KombuOperationalError as exc:
            raise errors.TransportError(f"cannot send to the broker: {exc}") from exc

    def callback(self, dag_id: str, run_id: str, notification_id: str, tries: int,
                 queue: str | None) -> None:
        """Ask a worker to run a callback: the message names the notification's try."""
        shown = {"callback": notification_id, "run": run_id, "try": tries}
        sig = self.signer.task(CALLBACK, dag_id, notification_id, run_id, tries, None, None)
        try:
            self.app.signature(CALLBACK, kwargs={
                "dag": dag_id, "task": notification_id, "run": run_id, "attempt": tries,
                KWARG: sig}, immutable=True, queue=queue or self.default_queue,
                argsrepr="()", kwargsrepr=repr(shown)).apply_async()
        except KombuOperationalError as exc:
            raise errors.TransportError(f"cannot send to the broker: {exc}") from exc

    def terminate(self, celery_ids: Sequence[str]) -> None:
        """Revoke these Celery tasks and terminate the processes running them."""
        if celery_ids:
            try:
                ids = list(celery_ids)
                # Workers act on a revoke only when it is signed (workers/remote_control).
                self.app.control.revoke(ids, terminate=True, signal="SIGTERM",
                                        **{KWARG: self.signer.revoke(ids, True, "SIGTERM")})
            except KombuOperationalError as exc:
                raise errors.TransportError(f"cannot reach the broker: {exc}") from exc

    def reachable(self, timeout: float = 3.0) -> bool:
        """Whether the broker answers now (checked before a submit writes anything)."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
        except Exception:  # any failure to connect means: not reachable now
            return False
        return True
