"""The ``http`` task kind: one request through httpx, its answer the task's result.

The request
    ``url``, or connection ``conn``'s URL with ``path`` appended (``https://x/v1`` and
    ``/orders`` give ``https://x/v1/orders``; a query in either is kept). The connection's
    headers are sent (``Authorization`` from the connections file, say) and the task's own
    headers override them by name; a ``{secret: ...}`` header is read in the worker. The
    body is the argument ``json`` (sent as ``application/json`` unless the task sets its
    own ``Content-Type``); each ``params.<name>`` argument is a query parameter (a list
    repeats it, None leaves it out, true/false are ``true``/``false``, an object is JSON).
    TLS certificates are verified; proxies and CA bundles follow the usual environment
    variables (``HTTPS_PROXY``, ``SSL_CERT_FILE``).

The result
    The body parsed when the answer is JSON (``application/json`` or ``*/*+json``; a
    body that says JSON but is not fails the attempt), else its text (decoded by its
    charset, UTF-8 by default, bad bytes replaced; a binary body fails). No body (HEAD,
    204, 205, 304, or empty) is None. The status and headers are not part of it.

What fails, and whether retries apply
    A status outside ``expect`` (default: any 2xx) raises HttpStatusUnexpected quoting at
    most 500 characters of the body. A 5xx, 408, 425 or 429 is retried by the task's
    retry policy; any other (a 404, a 401) fails the task at once, as another attempt
    would be answered the same. No answer (refused, reset, DNS, TLS) is HttpRequestFailed
    and retried. Error texts name the method and the URL without credentials or query
    (a connection's task names its path and the connection's origin only), never a header
    value.

Timeouts
    The task's ``timeout`` bounds the whole request: the worker's time limit (or
    ``Dag.test``'s) ends the attempt at the timeout, a TaskTimeout retried like any
    failure. The request has a deadline of its own too, TIMEOUT_GRACE_S later (connecting,
    sending, each read, and the body, checked between chunks; TaskTimeout as well), so it
    never waits on a server for ever whoever runs it. A task without a timeout gives its
    request DEFAULT_TIMEOUT_S seconds in all (then HttpRequestFailed).

Redirects
    Followed, at most MAX_REDIRECTS, unless the task expects the redirect's status (then
    that answer is the result). A redirect to another origin (scheme, host or port; an
    upgrade from http to https on the same host excepted) is followed without the
    connection's headers, the task's secret headers, ``Authorization``, ``Cookie`` and
    ``Proxy-Authorization``: credentials go only where the connection points.

The cap
    The body is streamed and reading stops once it passes the most bytes of result the
    worker stores (``ORCH_MAX_RESULT_BYTES``, the context's ``result_cap``); a declared
    ``Content-Length`` above it fails before any of the body is read. Not retried.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from orchestrator import errors
from orchestrator.execution.task_context import TaskContext
from orchestrator.kinds import http_answer
from orchestrator.model import spec, task_kinds
from orchestrator.model.secret_spec import SecretArg
from orchestrator.settings import LimitSettings

DEFAULT_TIMEOUT_S = 60.0
"""How long a request of a task without a ``timeout`` may take, all of it."""
TIMEOUT_GRACE_S = 2.0
"""How long past the task's timeout the request's own deadline is. The runner ends the
attempt at the timeout itself (a worker's soft time limit, Dag.test's deadline), and
records a TaskTimeout; a request ending at the same instant would have its failure
recorded while that limit fires, and recorded wrong. The deadline is the backstop: a
request never outlives its task by more than this, whoever runs it."""
MAX_REDIRECTS = 5
USER_AGENT = "orchestrator-http-task"
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
# RFC 9110 field values: visible ASCII, space and tab. A CR or LF would let a secret or
# a connections file add headers of its own; httpx would refuse it quoting the value.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")

_sending = contextvars.ContextVar("orchestrator_http_task_sending", default=False)


class _NotOurRequests(logging.Filter):
    """httpx logs every request at INFO with its whole URL (query and user included)
    into the attempt's log; the task prints its own line instead, without either."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _sending.get()


logging.getLogger("httpx").addFilter(_NotOurRequests())


class _Request:
    """One task's request as it will be sent, and what its errors may say."""

    def __init__(self, task: spec.TaskSpec, values: Mapping[str, Any], ctx: TaskContext,
                 secret: Callable[[SecretArg], str]) -> None:
        http = task.http
        assert http is not None  # the model checked the kind has its body
        self.http = http
        self.hidden: list[str] = []
        """Values no error may quote: the connection's secrets, the secret headers."""
        conn_headers: Mapping[str, str] = {}
        if http.conn is not None:
            conn = ctx.connection(http.conn)
            if conn.scheme not in ("http", "https"):
                raise http_answer.not_retryable(errors.ConnectionUnavailable(
                    f"connection {http.conn!r} is a {conn.scheme} URL; an http task needs "
                    "http:// or https://"))
            self.hidden += conn.secrets()
            self.url = join_url(conn.url, http.path)
            self.shown = (f"{http.method} {http.path or '/'} on connection {http.conn!r} "
                          f"({origin(conn.url)})")
            conn_headers = conn.headers
        else:
            assert http.url is not None
            self.url = http.url
            self.shown = f"{http.method} {origin(http.url)}{_path(http.url)}"
        self.foreign_drop = {name.lower() for name in conn_headers} | set(_CREDENTIAL_HEADERS)
        """Headers a redirect to another origin does not carry."""
        self.headers = httpx.Headers({"User-Agent": USER_AGENT})
        self.headers.update(self._checked(conn_headers, f"connection {http.conn!r}"))
        own: dict[str, str] = {}
        for name, value in http.headers.items():
            if isinstance(value, SecretArg):
                own[name] = secret(value)
                self.hidden.append(own[name])
                self.foreign_drop.add(name.lower())
            else:
                own[name] = value
        self.headers.update(self._checked(own, "the task"))
        self.content: bytes | None = None
        if task_kinds.HTTP_BODY in values:
            self.content = _json_bytes(values[task_kinds.HTTP_BODY], self.shown)
            if "content-type" not in self.headers:
                self.headers["Content-Type"] = "application/json"
        self.query = query_of(values)
        self.limit = task.timeout
        self.deadline = time.monotonic() + (DEFAULT_TIMEOUT_S if self.limit is None
                                            else self.limit + TIMEOUT_GRACE_S)
        self.cap = ctx.result_cap or LimitSettings.model_fields["max_result_bytes"].default

    def _checked(self, headers: Mapping[str, str], source: str) -> dict[str, str]:
        for name, value in headers.items():
            if not _FIELD_NAME.fullmatch(name):
                raise http_answer.not_retryable(errors.HttpRequestFailed(
                    f"{self.shown}: a header name from {source} is not an HTTP token"))
            if not _FIELD_VALUE.fullmatch(value):
                raise http_answer.not_retryable(errors.HttpRequestFailed(
                    f"{self.shown}: header {name!r} from {source} has a CR, LF, NUL or "
                    "non-ASCII character, which HTTP does not allow"))
        return dict(headers)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timed_out()
        return left

    def timed_out(self) -> errors.TaskFailure:
        if self.limit is not None:
            return errors.TaskTimeout(f"{self.shown}: no whole answer within the task's "
                                      f"timeout of {self.limit:g} s")
        return errors.HttpRequestFailed(
            f"{self.shown}: no whole answer within {DEFAULT_TIMEOUT_S:g} s (the limit of an "
            "http task without a timeout)")


def run(task: spec.TaskSpec, values: dict[str, Any], ctx: TaskContext,
        secret: Callable[[SecretArg], str]) -> Any:
    """Send the task's request; its answer's body is the result (see the module)."""
    req = _Request(task, values, ctx, secret)
    token = _sending.set(True)
    try:
        return _send(req)
    finally:
        _sending.reset(token)


def _send(req: _Request) -> Any:
    with httpx.Client(follow_redirects=False, verify=True, trust_env=True) as client:
        try:
            url = httpx.URL(req.url)
            if req.query:  # added to the URL's own query (httpx's params= would replace it)
                url = url.copy_merge_params(tuple(req.query))
            request = client.build_request(req.http.method, url, headers=req.headers,
                                           content=req.content, timeout=req.remaining())
        except httpx.InvalidURL:
            raise http_answer.not_retryable(errors.HttpRequestFailed(
                f"{req.shown}: not a URL httpx can send to")) from None
        origin_url = request.url
        for hops in range(MAX_REDIRECTS + 1):
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise req.timed_out() from None
            except httpx.HTTPError as exc:
                raise _failed(req, exc) from None
            try:
                status = response.status_code
                # The server's reason phrase is its own text: it may echo what it got.
                said = http_answer.redact(
                    f"{req.shown}: HTTP {status} {response.reason_phrase[:100]}", req.hidden
                ).rstrip()
                if (response.has_redirect_location
                        and not http_answer.is_expected(status, req.http.expect)):
                    if hops == MAX_REDIRECTS:
                        raise http_answer.not_retryable(errors.HttpStatusUnexpected(
                            status, f"{http_answer.expected_text(req.http.expect)} from "
                            f"{req.shown}", f"more than {MAX_REDIRECTS} redirects"))
                    request = _redirected(response, origin_url, req)
                    # The attempt's log: what answered, never the query or a header.
                    print(f"{said}, redirected to {origin(str(request.url))}"
                          f"{request.url.path}", flush=True)
                    continue
                print(said, flush=True)
                return _answer(req, response)
            except httpx.TimeoutException:
                raise req.timed_out() from None
            except httpx.HTTPError as exc:
                raise _failed(req, exc) from None
            finally:
                response.close()
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _answer(req: _Request, response: httpx.Response) -> Any:
    if not http_answer.is_expected(response.status_code, req.http.expect):
        raise http_answer.unexpected(response, req.http.expect, req.shown, req.hidden)
    if req.http.method == "HEAD" or response.status_code in http_answer.NO_BODY_STATUSES:
        return None
    data = http_answer.read_capped(response, req.cap, req.shown, req.remaining)
    return http_answer.result_of(data, response.headers.get("Content-Type", ""), req.shown)


def _redirected(response: httpx.Response, origin_url: httpx.URL,
                req: _Request) -> httpx.Request:
    """The next request (httpx's: method and body as the status says), carrying the
    credentials only to the origin they were given for."""
    request = response.next_request
    assert request is not None  # set whenever a redirect is not followed by httpx
    if not _same_origin(origin_url, request.url):
        for name in req.foreign_drop:
            request.headers.pop(name, None)
    request.extensions = {**request.extensions,
                          "timeout": httpx.Timeout(req.remaining()).as_dict()}
    return request


def _same_origin(first: httpx.URL, then: httpx.URL) -> bool:
    """Whether ``then`` is where ``first``'s credentials may go: the same scheme, host
    and port, or the same host's https on 443 after http on 80 (as httpx decides for
    ``Authorization``)."""
    def where(url: httpx.URL) -> tuple[str, str, int | None]:
        return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)

    if where(first) == where(then):
        return True
    return (first.host == then.host and where(first)[::2] == ("http", 80)
            and where(then)[::2] == ("https", 443))


def _failed(req: _Request, exc: httpx.HTTPError) -> errors.HttpRequestFailed:
    detail = http_answer.redact(str(exc), req.hidden)[:300] or type(exc).__name__
    failed = errors.HttpRequestFailed(f"{req.shown}: {type(exc).__name__}: {detail}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        http_answer.not_retryable(failed)  # a redirect to ftp:// says the same next time
    return failed


def join_url(base: str, path: str) -> str:
    """``base`` with ``path`` appended as one more segment, one slash between them;
    ``path`` may carry a query, added to the base's own. Never another host: the path
    is only ever a path of the connection's URL."""
    path = path.partition("#")[0]
    if not path:
        return base
    parts = urlsplit(base)
    extra, _, query = path.partition("?")
    new_path = parts.path.rstrip("/") + "/" + extra.lstrip("/") if extra else parts.path
    joined_query = "&".join(q for q in (parts.query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, new_path, joined_query, ""))


def origin(url: str) -> str:
    """``scheme://host[:port]``: no user, password, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(an unreadable URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}"


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def query_of(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query parameters of the task's ``params.<name>`` arguments, in order."""
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        if not key.startswith(task_kinds.HTTP_QUERY_PREFIX):
            continue
        name = key[len(task_kinds.HTTP_QUERY_PREFIX):]
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                out.append((name, _query_text(item)))
    return out


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_bytes(body: Any, shown: str) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise http_answer.not_retryable(errors.HttpRequestFailed(
            f"{shown}: the json body is not JSON: {exc}")) from None
