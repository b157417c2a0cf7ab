"""What a worker checks in a task message before anything of it runs.

Two places ask. The consumer (:mod:`workers.registry`, in the worker's main process)
checks the whole message, headers and body, before Celery's own code touches it, so a
malformed one is dropped with one warning instead of stopping the worker. The task
itself (in the pool process) checks its call again before the runtime reads the
database: that covers any Celery app our tasks are registered on (a test's in-process
worker has Celery's plain consumer) and a task called other than from its own message.

Both check the same things, in this order: the shape and type of every field (an
attempt is an ``int``, never ``"1"``, ``True`` or ``1.0``, which SQLite would compare
equal), that the Celery name belongs to the DAG the kwargs name, then the signature.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from celery import Celery, Task
from kombu.message import Message

from orchestrator.model import spec
from orchestrator.transport.dispatch import CALLBACK
from orchestrator.transport.signing import KWARG, Signer

log = logging.getLogger(__name__)

_ID = spec.ID_PATTERN[1:-1]
ID = re.compile(_ID)
TASK_ID = re.compile(_ID + r"(?:\[(?:0|[1-9][0-9]{0,17})\])?")
"""A task id, or a mapped instance's (``name[3]``)."""
RUN_ID = re.compile(r"[0-9a-f]{32}")
MAX_ATTEMPT = 2**31 - 1
"""Attempts are stored as 32-bit integers on every backend."""
KWARGS = frozenset({"dag", "task", "run", "attempt", KWARG})
MAX_BODY_BYTES = 1024 * 1024
"""Far above the largest message we send (a chain of ``plan.MAX_SEGMENT`` links), so a
huge body is dropped before it is decoded in the worker's main process."""
_SHOWN = 120

# Header -> the types a value may have (None is always allowed). Celery reads these.
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "lang": (str,), "shadow": (str,), "eta": (str,), "expires": (str,), "group": (str,),
    "group_index": (int,), "retries": (int,), "root_id": (str,), "parent_id": (str,),
    "argsrepr": (str,), "kwargsrepr": (str,), "origin": (str,), "ignore_result": (bool,),
    "replaced_task_nesting": (int,), "stamped_headers": (list,), "stamps": (dict,),
}


def shown(value: object) -> str:
    """A value an attacker chose, fit for one log line: repr'd and cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def call_problem(name: object, kwargs: object, timelimit: object,
                 signer: Signer) -> str | None:
    """Why a task call must not run (None: it may). ``timelimit`` is Celery's header,
    ``[hard, soft]``."""
    problem = _kwargs_problem(kwargs)
    if problem is not None:
        return problem
    assert isinstance(kwargs, dict)
    dag, task, run, attempt = kwargs["dag"], kwargs["task"], kwargs["run"], kwargs["attempt"]
    if name != CALLBACK and not (isinstance(name, str) and name.startswith(dag + ".")
                                 and ID.fullmatch(name, len(dag) + 1)):
        return f"its name {shown(name)} is not a task of DAG {dag!r}"
    limits = _limits(timelimit)
    if limits is None:
        return f"its time limits {shown(timelimit)} are not two numbers"
    if not signer.task_ok(kwargs[KWARG], name, dag, task, run, attempt, *limits):
        return "it is unsigned or its signature is wrong"
    return None


def _kwargs_problem(kwargs: object) -> str | None:
    if not isinstance(kwargs, dict) or kwargs.keys() != KWARGS:
        keys = sorted(kwargs, key=str) if isinstance(kwargs, dict) else kwargs
        return f"its kwargs must be exactly {sorted(KWARGS)}, got {shown(keys)}"
    attempt = kwargs["attempt"]
    if type(attempt) is not int or not 1 <= attempt <= MAX_ATTEMPT:
        return f"its attempt {shown(attempt)} is not a positive integer"
    for field, pattern in (("dag", ID), ("task", TASK_ID), ("run", RUN_ID)):
        value = kwargs[field]
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            return f"its {field} {shown(value)} is not a {field} id"
    return None


def _limits(timelimit: object) -> tuple[float | None, float | None] | None:
    if timelimit is None:
        return None, None
    if not isinstance(timelimit, list | tuple) or len(timelimit) != 2:
        return None
    hard, soft = timelimit
    return (hard, soft) if _limit_ok(hard) and _limit_ok(soft) else None


def _limit_ok(value: object) -> bool:
    if value is None:
        return True
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def message_problem(message: Message, app: Celery, signer: Signer) -> str | None:
    """Why the consumer must drop this message (None: Celery may take it)."""
    headers = message.headers
    if not isinstance(headers, dict):
        return "its headers are not an object"
    problem = _envelope_problem(message, headers)
    if problem is not None:
        return problem
    try:
        payload = message.payload  # decoded once: Celery's request reuses it
    except Exception as exc:  # whatever the bytes are, they are not a message of ours
        return f"its body does not decode ({type(exc).__name__})"
    if not isinstance(payload, list | tuple) or len(payload) != 3:
        return "its body is not [args, kwargs, embed]"
    args, kwargs, embed = payload
    if args:
        return "it has positional arguments"
    problem = _embed_problem(embed) or call_problem(headers["task"], kwargs,
                                                    headers.get("timelimit"), signer)
    if problem is not None:
        return problem
    registered = dict.get(app._tasks, headers["task"])
    if registered is not None and not getattr(registered, "orchestrator_task", False):
        return "it names one of Celery's own tasks, not a DAG task"
    return None


def _envelope_problem(message: Message, headers: Mapping[str, Any]) -> str | None:
    if not isinstance(headers.get("task"), str):
        return "it names no task"
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= 255:
        return f"its id {shown(task_id)} is not a task id"
    if message.content_type != "application/json" or message.content_encoding != "utf-8":
        return (f"its content type {shown(message.content_type)} / encoding "
                f"{shown(message.content_encoding)} is not JSON in UTF-8")
    if "compression" in headers:
        return "it is compressed (we never compress, and a small body may expand a lot)"
    if not isinstance(message.properties, dict) or not isinstance(message.delivery_info, dict):
        return "its properties are not an object"
    if len(message.body or b"") > MAX_BODY_BYTES:
        return f"its body is larger than {MAX_BODY_BYTES} bytes"
    return _header_problem(headers)


def _header_problem(headers: Mapping[str, Any]) -> str | None:
    for key, types in _HEADER_TYPES.items():
        value = headers.get(key)
        if value is not None and (not isinstance(value, types) or (
                bool not in types and isinstance(value, bool))):
            return f"its {key} header {shown(value)} has the wrong type"
    for key in ("eta", "expires"):
        value = headers.get(key)
        if value is not None and not _timestamp_ok(value):
            return f"its {key} header {shown(value)} is not a time"
    return None


def _timestamp_ok(value: str) -> bool:
    try:
        when = dt.datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        when.timestamp()
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _embed_problem(embed: object) -> str | None:
    if not isinstance(embed, dict):
        return "its embed is not an object"
    if embed.get("callbacks") or embed.get("errbacks") or embed.get("chord"):
        return "it carries callbacks, errbacks or a chord, which we never send"
    chain = embed.get("chain")
    if chain is not None and (not isinstance(chain, list)
                              or not all(_link_ok(link) for link in chain)):
        return "its chain is not a list of task signatures"
    return None


def _link_ok(link: object) -> bool:
    # Each link is checked in full (signature included) when its own message arrives;
    # here only that Celery can turn it into a message without failing.
    return (isinstance(link, dict) and isinstance(link.get("task"), str)
            and isinstance(link.get("kwargs"), dict) and not link.get("args")
            and isinstance(link.get("options", {}), dict)
            and link.get("subtask_type") is None)


def admitted(task: Task, signer: Signer, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[str, str, str, int] | None:
    """In the task: (dag, task, run, attempt) if its call may run; else None, after one
    warning (Celery then acknowledges the message, and no chain link follows)."""
    request = task.request
    problem = ("it has positional arguments" if args
               else call_problem(request.task, kwargs, request.timelimit, signer))
    if problem is None:
        return kwargs["dag"], kwargs["task"], kwargs["run"], kwargs["attempt"]
    request.chain = None
    refused(request.id, request.task, problem)
    return None


def refused(task_id: object, name: object, problem: str) -> None:
    log.warning("dropped task message %s (%s): %s", shown(task_id), shown(name), problem)
