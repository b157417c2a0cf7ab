"""Deliver a task's next message twice: the broker fault behind users' idempotence tests.

A :class:`Redelivery` watches the broker with ``MONITOR`` (which streams every command
the server executes, as it executes it), takes the first ``LPUSH``/``RPUSH`` of a task
message whose kwargs name the task, and pushes that message onto the same queue once
more: the same body, headers and signature, only under a new delivery tag, as a broker
that redelivers a message gives it. Nothing is mocked and no sender is changed: whoever
sent the message (a client, a worker releasing a child, the reconciler), workers receive
it twice, and the claim in the state database decides what the second delivery does.

``MONITOR`` costs the server some throughput while it is on, so a redelivery watches only
until it has pushed its copy, or until it is closed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import uuid
from typing import Any

import redis

from orchestrator import errors

log = logging.getLogger(__name__)

_PUSHES = frozenset({b"LPUSH", b"RPUSH"})
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8}
_POLL_S = 0.2
"""How often the watcher looks whether it was closed, between commands."""


class Redelivery:
    """``start()`` arms it (the monitor is on when it returns); the next message for task
    ``task_id`` (of ``dag_id``, of ``run_id``, when given) is then pushed a second time."""

    def __init__(self, broker_url: str, task_id: str, *, dag_id: str | None = None,
                 run_id: str | None = None) -> None:
        self.broker_url = broker_url
        self.want: dict[str, Any] = {"task": task_id, "dag": dag_id, "run": run_id}
        self.pushed = threading.Event()
        """Set once the copy is on the queue."""
        self.queue: str | None = None
        self.message: dict[str, Any] | None = None
        """The message as the broker first received it (its kwargs name the attempt)."""
        self._stop = threading.Event()
        self._monitor: redis.Redis | None = None
        self._thread: threading.Thread | None = None

    @property
    def named(self) -> dict[str, Any] | None:
        """What the copied message names: ``{"dag", "task", "run", "attempt"}``."""
        kwargs = None if self.message is None else _kwargs(self.message)
        return None if kwargs is None else {k: kwargs.get(k)
                                            for k in ("dag", "task", "run", "attempt")}

    def start(self) -> Redelivery:
        self._monitor = redis.Redis.from_url(self.broker_url)
        conn: Any = self._monitor.connection_pool.get_connection()
        try:
            conn.send_command("MONITOR")
            if conn.read_response() != b"OK":
                raise errors.TransportError("the broker refused MONITOR")
        except redis.RedisError as exc:
            conn.disconnect()
            self._monitor.close()
            raise errors.TransportError(f"cannot watch the broker: {exc}") from exc
        self._thread = threading.Thread(target=self._watch, args=(conn,), daemon=True,
                                        name=f"orchestrator-redeliver-{self.want['task']}")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching (a copy already pushed stays pushed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._monitor is not None:
            self._monitor.close()

    def _watch(self, conn: Any) -> None:
        try:
            while not self._stop.is_set():
                if not conn.can_read(timeout=_POLL_S):
                    continue
                found = self._match(conn.read_response())
                if found is not None:
                    self._push(*found)
                    return
        except redis.RedisError as exc:  # the broker went away: nothing more to copy
            log.warning("stopped watching for %s's next message: %s", self.want["task"], exc)
        finally:
            conn.disconnect()

    def _match(self, line: object) -> tuple[bytes, dict[str, Any]] | None:
        if not isinstance(line, bytes):
            return None
        args = arguments(line)
        if len(args) < 3 or args[0].upper() not in _PUSHES:
            return None
        for payload in args[2:]:
            message = _task_message(payload)
            if message is not None and self._wanted(message):
                return args[1], message
        return None

    def _wanted(self, message: dict[str, Any]) -> bool:
        kwargs = _kwargs(message)
        return kwargs is not None and all(
            value is None or kwargs.get(key) == value for key, value in self.want.items())

    def _push(self, queue: bytes, message: dict[str, Any]) -> None:
        copy = {**message, "properties": {**message["properties"],
                                          "delivery_tag": str(uuid.uuid4())}}
        client = redis.Redis.from_url(self.broker_url)
        try:
            client.lpush(queue, json.dumps(copy))  # where kombu puts a message it sends
        finally:
            client.close()
        self.queue, self.message = queue.decode(errors="replace"), message
        self.pushed.set()


def arguments(line: bytes) -> list[bytes]:
    """The command and arguments of one ``MONITOR`` line
    (``<time> [<db> <client>] "CMD" "arg" ...``, each argument quoted and escaped)."""
    start = line.find(b"] ")
    if start < 0:
        return []
    out: list[bytes] = []
    i, n = start + 2, len(line)
    while i < n:
        if line[i] != ord('"'):
            i += 1
            continue
        i += 1
        arg = bytearray()
        while i < n and line[i] != ord('"'):
            c = line[i]
            if c == ord("\\") and i + 1 < n:
                e = line[i + 1]
                if e == ord("x") and i + 3 < n:
                    arg.append(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                arg.append(_ESCAPES.get(e, e))
                i += 2
                continue
            arg.append(c)
            i += 1
        out.append(bytes(arg))
        i += 1
    return out


def _task_message(payload: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if (not isinstance(message, dict) or not isinstance(message.get("headers"), dict)
            or not isinstance(message.get("properties"), dict)
            or not isinstance(message["headers"].get("task"), str)):
        return None
    return message


def _kwargs(message: dict[str, Any]) -> dict[str, Any] | None:
    """The kwargs of a Celery task message (``[args, kwargs, embed]``), if it has them."""
    body = message.get("body")
    if not isinstance(body, str):
        return None
    try:
        raw = (base64.b64decode(body)
               if message["properties"].get("body_encoding") == "base64" else body.encode())
        decoded = json.loads(raw)
    except (ValueError, binascii.Error):
        return None
    if isinstance(decoded, list) and len(decoded) == 3 and isinstance(decoded[1], dict):
        return decoded[1]
    return None
