"""The remote control commands a worker obeys: what Flower and cancel need, no more.

Celery's workers obey any broadcast on the broker: ``shutdown`` from anyone stops them,
``pool_shrink`` or ``cancel_consumer`` starves them, ``rate_limit`` or ``time_limit``
slows or kills tasks. Flower needs only the inspect commands and ``enable_events`` /
``heartbeat``; cancel needs ``revoke`` (with ``terminate``), which the dispatcher signs.

Celery keeps its commands in one class-level registry (``Panel.data``) and hands each
worker's mailbox that dict. We leave the registry alone and give our worker's mailbox a
dict of its own (:func:`handlers`), so the choice is per worker and changes nothing in
any other app or process: every command we do not list answers "disabled".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.control import Panel

from orchestrator.transport.signing import KWARG, Signer

log = logging.getLogger(__name__)

READ_ONLY = frozenset({
    "ping", "stats", "report", "clock", "conf", "dump_conf", "active", "dump_active",
    "reserved", "dump_reserved", "scheduled", "dump_schedule", "registered", "dump_tasks",
    "revoked", "dump_revoked", "active_queues", "query_task",
})
"""Inspect commands Flower and our tools use; they change nothing. ``hello`` is left out:
it merges the sender's list into the worker's revoked ids."""
EVENTS = frozenset({"enable_events", "heartbeat"})
"""Flower turns task events on in the workers it watches (they cost CPU, not safety)."""

Handler = Callable[..., Any]


def handlers(signer: Signer) -> dict[str, Handler]:
    """The commands this worker answers, by name: Celery's own for the allowed ones, a
    signature check before ``revoke``, and a refusal for every other name Celery knows."""
    out: dict[str, Handler] = {name: _disabled(name) for name in Panel.data}
    out.update({name: Panel.data[name] for name in READ_ONLY | EVENTS if name in Panel.data})
    out["revoke"] = _signed_revoke(Panel.data["revoke"], signer)
    return out


def _disabled(name: str) -> Handler:
    def refuse(state: Any, **_: Any) -> dict[str, str]:
        log.warning("refused remote control command %r: it is switched off on this worker",
                    name)
        return {"error": f"{name} is disabled on this worker"}

    return refuse


def _signed_revoke(revoke: Handler, signer: Signer) -> Handler:
    def signed_revoke(state: Any, task_id: Any = None, terminate: Any = False,
                      signal: Any = None, **kwargs: Any) -> Any:
        ids = [task_id] if isinstance(task_id, str) else task_id
        sig = kwargs.pop(KWARG, None)
        if not (isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)
                and signer.revoke_ok(sig, ids, terminate, signal)):
            log.warning("refused an unsigned or wrongly signed revoke")
            return {"error": "revoke refused: it is not signed with this worker's key"}
        return revoke(state, task_id, terminate=terminate, signal=signal, **kwargs)

    return signed_revoke
