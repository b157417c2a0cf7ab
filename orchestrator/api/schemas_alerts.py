"""The API's bodies for alerts: each notification of the outbox and each try at it.

A notification's target (the webhook's URL, the mail's addresses, a secret's reference)
is never read for these: records.Notification does not carry it, so no route can show
it. Errors and what receivers answered are masked like task errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.model import records
from orchestrator.observability.masking import Masker

NotificationState = Literal["pending", "sending", "delivered", "failed"]
"""records.NOTIFICATION_STATES, spelled out for the document (a test holds them equal)."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeliveryView(_Out):
    attempt: int = Field(description="The try's number, from 1.")
    holder: str = Field(description="The coordinator that made it.")
    started_at: dt.datetime
    finished_at: dt.datetime | None = Field(description="Null while being made, or if its "
                                            "sender died making it.")
    outcome: str | None = Field(description="delivered or failed; null while being made.")
    status: int | None = Field(description="The receiver's HTTP status or SMTP reply code.")
    detail: str | None = Field(description="Why it failed, as the sender saw it.")


class NotificationView(_Out):
    id: str = Field(description="The dedupe key: receivers get it as "
                    "X-Orchestrator-Event-Id, the same on every try.")
    event: str = Field(description="run_failed, run_succeeded, task_failed, task_retried, "
                       "deadline_missed (callbacks: task_succeeded too).")
    dag_id: str
    run_id: str
    task_id: str | None
    attempt: int | None
    channel: Literal["webhook", "slack", "email", "callback"]
    state: NotificationState = Field(description="failed: given up after its tries.")
    tries: int
    next_at: dt.datetime = Field(description="When it is (or was) due next.")
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: dict[str, Any] = Field(description="What the alert says (event, DAG, run, "
                                    "task, error, time), masked.")
    deliveries: list[DeliveryView]


class NotificationList(_Out):
    notifications: list[NotificationView]


def _text(masker: Masker, value: str | None) -> str | None:
    return None if value is None else masker.mask(value)


def view(n: records.Notification, masker: Masker) -> NotificationView:
    """The notification as callers see it: errors, details and the payload masked (an
    error quotes whatever the failing code had)."""
    tries = [DeliveryView(**d.model_dump(exclude={"detail"}), detail=_text(masker, d.detail))
             for d in n.deliveries]
    return NotificationView(**n.model_dump(exclude={"last_error", "payload", "deliveries"}),
                            last_error=_text(masker, n.last_error),
                            payload=masker.mask_value(n.payload), deliveries=tries)
