"""The worker's callback task: run a DAG's or task's ``on_failure``/``on_success``/
``on_retry`` for one notification of the outbox, and record how it went there.

The notifier sends ``orchestrator:callback`` naming the notification and its try; a
worker runs it only while that try holds the notification (a message for an older try,
redelivered or resent, runs nothing). A callback that raises is recorded as failed and
is not tried again: it never touches the run's state.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from celery import Celery

from orchestrator.execution import callbacks
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import sealed
from orchestrator.observability import masking
from orchestrator.transport.dispatch import CALLBACK
from orchestrator.transport.signing import Signer
from orchestrator.wiring import Wiring
from workers import integrity

log = logging.getLogger(__name__)


def register(app: Celery, wiring: Any, signer: Signer) -> None:
    """``wiring``: a callable giving this process's :class:`Wiring` (one per process)."""

    def callback(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = integrity.admitted(self, signer, args, kwargs)
        if call is None:
            return "refused"
        _, notification_id, _, tries = call
        return run(wiring(), notification_id, tries)

    app.task(name=CALLBACK, bind=True, acks_late=True, ignore_result=True, shared=False,
             orchestrator_task=True)(callback)


def run(wiring: Wiring, notification_id: str, tries: int) -> str:
    store = wiring.store
    out = store.sending(notification_id)
    if out is None or out.tries != tries:
        return "stale"  # delivered, given up, or another try holds it now
    masker = masking.masker_for(wiring.settings)
    try:
        header = store.header(out.run_id)
        dag = wiring.outcomes.dag_of(header)
        params, secrets = sealed.unseal_params(dag.spec, header.params,
                                               wiring.settings.security.signing_key)
        masker = masker.with_secrets(secrets)
        p = out.payload
        ctx = TaskContext(dag.id, out.run_id, p.get("task_id") or "", p.get("attempt") or 0,
                          params, logical_time=header.logical_time,
                          interval_start=header.interval_start,
                          interval_end=header.interval_end, trigger=header.trigger,
                          payload=header.payload)
        callbacks.call(out.target["callable"], callbacks.Alert(
            out.id, out.event, out.dag_id, out.run_id, p.get("task_id"), p.get("attempt"),
            p.get("error")), ctx)
    except Exception as exc:  # the user's callback (or its import) failed: recorded only
        detail = masker.mask(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        store.finish_notification(out, delivered=False, detail=detail)
        log.warning("callback %s of run %s failed: %s", out.target.get("callable"),
                    out.run_id, masker.mask(f"{type(exc).__name__}: {exc}"))
        return "failed"
    store.finish_notification(out, delivered=True)
    return "delivered"
