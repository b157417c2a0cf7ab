"""Who is told of what: alert rules, deadlines and callbacks, as data. Pure.

A rule names the events it is for and one channel::

    notify:
      - on: [run_failed, task_failed, deadline_missed]
        webhook: {url: "https://hooks.example.com/x", secret: {env: HOOK_SECRET}}
      - on: [run_failed]
        slack: {url: {env: SLACK_WEBHOOK_URL}}
      - on: [run_failed, run_succeeded]
        email: {to: ["ops@example.com"]}

A value may be written as itself or as a reference, ``{env: NAME}`` or ``{file: PATH}``,
that the coordinator resolves when it delivers: so a webhook's URL or signing secret is
never in a DAG file, the database or a message, only where it is read from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator


class Event(enum.StrEnum):
    RUN_FAILED = "run_failed"
    RUN_SUCCEEDED = "run_succeeded"
    TASK_FAILED = "task_failed"
    """A task failed for good: after its retries."""
    TASK_RETRIED = "task_retried"
    DEADLINE_MISSED = "deadline_missed"
    TASK_SUCCEEDED = "task_succeeded"
    """Only for ``on_success`` callbacks of tasks: rules cannot name it."""


RULE_EVENTS = tuple(e for e in Event if e != Event.TASK_SUCCEEDED)

CallbackKind = Literal["on_failure", "on_success", "on_retry"]
DAG_CALLBACKS: dict[Event, str] = {Event.RUN_FAILED: "on_failure",
                                    Event.RUN_SUCCEEDED: "on_success"}
TASK_CALLBACKS: dict[Event, str] = {Event.TASK_FAILED: "on_failure",
                                     Event.TASK_SUCCEEDED: "on_success",
                                     Event.TASK_RETRIED: "on_retry"}
"""The callback each event calls: a DAG's for its runs' ends, a task's for its own."""

CallbackPath = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                                    max_length=500)]
"""A callback by import path, ``module:qualname``, as tasks name their functions."""
Callbacks = dict[CallbackKind, CallbackPath]
Deadline = (Annotated[float, Field(gt=0, le=366 * 24 * 3600)]
            | Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")])
"""Seconds after the run starts, or a time of day (HH:MM) in the DAG's zone."""

_ENV = r"[A-Za-z_][A-Za-z0-9_]*"
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvRef(_Frozen):
    env: str = Field(pattern=f"^{_ENV}$", max_length=200)


class FileRef(_Frozen):
    file: str = Field(min_length=1, max_length=4096)


MAX_TEXT = 4096


def _text(value: Any) -> Any:
    # One clear message instead of pydantic's one per member of the union.
    if isinstance(value, dict):
        kind = EnvRef if set(value) == {"env"} else FileRef if set(value) == {"file"} else None
        if kind is None:
            raise ValueError("a reference is {env: NAME} or {file: PATH}, got keys "
                             f"{sorted(value, key=str)}")
        try:
            return kind.model_validate(value)
        except ValidationError as exc:
            raise ValueError(f"{value!r}: {exc.errors()[0]['msg']}") from None
    if not isinstance(value, str | EnvRef | FileRef) or value == "":
        raise ValueError("expected a non-empty string, {env: NAME} or {file: PATH}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    return value


Text = Annotated[str | EnvRef | FileRef, BeforeValidator(_text)]
"""A literal, or where the coordinator reads it from when it delivers."""


class Webhook(_Frozen):
    url: Text
    secret: Text | None = Field(
        default=None, description="Key of the X-Orchestrator-Signature HMAC-SHA256.")


class Slack(_Frozen):
    url: Text


class Email(_Frozen):
    to: tuple[Annotated[str, Field(max_length=320)], ...] = Field(min_length=1,
                                                                   max_length=100)

    @model_validator(mode="after")
    def _addresses(self) -> Email:
        bad = [a for a in self.to if not _EMAIL.fullmatch(a)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(map(repr, bad))}")
        return self


CHANNELS = ("webhook", "slack", "email")


class Rule(_Frozen):
    on: tuple[Event, ...] = Field(min_length=1)
    webhook: Webhook | None = None
    slack: Slack | None = None
    email: Email | None = None
    line: int | None = Field(default=None, exclude=True, description="line in its file")

    @model_validator(mode="after")
    def _one_channel(self) -> Rule:
        named = [c for c in CHANNELS if getattr(self, c) is not None]
        if len(named) != 1:
            raise ValueError(f"a rule names exactly one channel ({', '.join(CHANNELS)}); "
                             f"this one names {len(named)}")
        if Event.TASK_SUCCEEDED in self.on:
            raise ValueError("'task_succeeded' is for on_success callbacks; rules can be "
                             f"on: {', '.join(RULE_EVENTS)}")
        return self

    @property
    def channel(self) -> str:
        return next(c for c in CHANNELS if getattr(self, c) is not None)

    @property
    def target(self) -> dict[str, Any]:
        """The channel's settings as stored with a notification (references unresolved)."""
        config: BaseModel = getattr(self, self.channel)
        return config.model_dump(mode="json", exclude_none=True)


class Rules(_Frozen):
    """The global rules file (``ORCH_NOTIFY_FILE``): the same ``notify:`` list."""

    notify: tuple[Rule, ...] = ()


def time_of_day(value: str) -> tuple[int, int] | None:
    """``(6, 0)`` for ``"06:00"``; None if it is not HH:MM."""
    m = _TIME_OF_DAY.fullmatch(value)
    return (int(m.group(1)), int(m.group(2))) if m else None


def deadline_at(deadline: float | str, *, started: dt.datetime,
                logical_time: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime:
    """When a run must have ended: ``deadline`` seconds after it started, or the first
    ``HH:MM`` in the DAG's zone after its logical time (its start, unscheduled)."""
    if not isinstance(deadline, str):
        return started + dt.timedelta(seconds=deadline)
    hm = time_of_day(deadline)
    if hm is None:
        raise ValueError(f"deadline {deadline!r} is neither seconds nor HH:MM")
    base = (logical_time or started).astimezone(zone)
    due = base.replace(hour=hm[0], minute=hm[1], second=0, microsecond=0)
    if due <= base:
        # The next day's HH:MM, as a wall-clock time (a DST change keeps it at HH:MM).
        due = (base + dt.timedelta(days=1)).replace(hour=hm[0], minute=hm[1], second=0,
                                                     microsecond=0)
    return due.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Alerts:
    """A DAG's alerting, as its plan carries it: what its transactions must write."""

    rules: tuple[Rule, ...] = ()
    callbacks: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Task id ("" for the DAG) -> callback kind -> ``module:qualname``."""
    deadline: float | str | None = None

    def callback(self, event: Event, task_id: str | None = None) -> str | None:
        """The ``module:qualname`` this event calls, if any."""
        if task_id is None:
            kind = DAG_CALLBACKS.get(event)
            return None if kind is None else self.callbacks.get("", {}).get(kind)
        kind = TASK_CALLBACKS.get(event)
        return None if kind is None else self.callbacks.get(task_id, {}).get(kind)

    @classmethod
    def of(cls, rules: tuple[Rule, ...], dag_callbacks: dict[str, str],
           task_callbacks: dict[str, dict[str, str]], deadline: float | str | None,
           ) -> Alerts | None:
        """None when the DAG alerts nobody: its transactions then write nothing."""
        callbacks = {k: v for k, v in task_callbacks.items() if v}
        if dag_callbacks:
            callbacks[""] = dag_callbacks
        if not rules and not callbacks and deadline is None:
            return None
        return cls(rules, callbacks, deadline)
