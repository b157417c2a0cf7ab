"""What an http task makes of an answer: its body read under a cap, and the result or
the error it becomes (``orchestrator.kinds.http`` sends the request).

Nothing here is allowed to quote a header value, a connection's secret or the query:
error texts are built from the request's shown name (method and URL without credentials
or query) and a short body snippet with the known secrets cut out.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import httpx

from orchestrator import errors

SNIPPET_CHARS = 500
"""Most characters of an unexpected answer's body quoted in its error."""
_SNIPPET_BYTES = 4 * SNIPPET_CHARS  # enough for 500 characters of UTF-8, whatever the text
RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Besides every 5xx: a timeout, too early, too many requests. They say "later", so the
task's retries apply; any other unexpected status would only be answered again."""
NO_BODY_STATUSES = frozenset({204, 205, 304})

E = TypeVar("E", bound=BaseException)


def not_retryable(exc: E) -> E:
    """Mark ``exc`` as not worth retrying (workers and Dag.test fail the task at once)."""
    exc.__dict__["retryable"] = False
    return exc


def expected_text(expect: Sequence[int]) -> str:
    if not expect:
        return "2xx"
    return " or ".join(str(s) for s in expect)


def is_expected(status: int, expect: Collection[int]) -> bool:
    return status in expect if expect else 200 <= status < 300


def redact(text: str, hidden: Sequence[str]) -> str:
    """``text`` with every value of ``hidden`` cut out (a worker masks more forms later;
    ``Dag.test`` has only this)."""
    for value in sorted(hidden, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


def unexpected(response: httpx.Response, expect: Sequence[int], shown: str,
               hidden: Sequence[str]) -> errors.HttpStatusUnexpected:
    """The error of an answer whose status is not expected, quoting the start of its body.
    Retryable when the status says "later" (5xx, 408, 425, 429)."""
    status = response.status_code
    exc = errors.HttpStatusUnexpected(status, f"{expected_text(expect)} from {shown}",
                                      _snippet(response, hidden))
    if not (status >= 500 or status in RETRYABLE_STATUSES):
        not_retryable(exc)
    return exc


def _snippet(response: httpx.Response, hidden: Sequence[str]) -> str:
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= _SNIPPET_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status is the error; a body cut short only quotes less
    charset = _charset(response.headers.get("Content-Type", ""))
    text = " ".join(bytes(data[:_SNIPPET_BYTES]).decode(charset, "replace").split())
    # Cut to size after redacting, so a secret on the boundary is not left half shown.
    text = redact(text, hidden)
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1] + "…"


def read_capped(response: httpx.Response, cap: int, shown: str,
                check_deadline: Callable[[], object]) -> bytes:
    """The whole body (decoded from its content encoding), failing as soon as it is more
    than ``cap`` bytes: a server sending gigabytes costs one chunk past the cap, never
    the whole. ``check_deadline`` runs between chunks (a trickling server must not
    outlast the task's timeout one slow chunk at a time)."""
    declared = response.headers.get("Content-Length", "")
    identity = response.headers.get("Content-Encoding", "identity").lower() == "identity"
    if identity and declared.isdigit() and int(declared) > cap:
        raise _too_big(shown, cap, f"it says {int(declared)} bytes; none were read")
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > cap:
            raise _too_big(shown, cap, "stopped reading there")
        check_deadline()
    return bytes(data)


def _too_big(shown: str, cap: int, detail: str) -> errors.InvalidResult:
    # Not retried: the same request would most likely be answered as big again.
    return not_retryable(errors.InvalidResult(
        f"{shown}: the response is more than {cap} bytes, the most a task's result may be "
        f"(ORCH_MAX_RESULT_BYTES); {detail}"))


def result_of(data: bytes, content_type: str, shown: str) -> Any:
    """The task's result: None for no body, the parsed value for a JSON media type
    (``application/json``, ``*/*+json``), the text otherwise."""
    if not data:
        return None
    mime = content_type.partition(";")[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(data)  # bytes: UTF-8, -16 or -32 as RFC 8259 allows
        except ValueError as exc:
            # A failure rather than the text: a downstream task expecting an object
            # would fail further away, less clearly.
            raise errors.InvalidResult(f"{shown}: the response says {mime} but is not "
                                       f"JSON ({_reason(exc)})") from None
    text = data.decode(_charset(content_type), errors="replace")
    if "\0" in text:
        raise not_retryable(errors.InvalidResult(
            f"{shown}: the response ({mime or 'no content type'}) is binary; an http "
            "task's result is JSON or text"))
    return text


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)[:200]


_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def _charset(content_type: str) -> str:
    found = _CHARSET.search(content_type)
    if found:
        try:
            return codecs.lookup(found.group(1)).name
        except LookupError:
            pass  # an unknown charset: UTF-8, with replacement characters if it is not
    return "utf-8"
