"""Every error the server answers is ``application/problem+json`` (RFC 9457).

Our own errors map by kind (not found 404, conflict 409, bad input 422 listing every
problem); FastAPI's validation errors and Starlette's (unknown route, wrong method) are
turned into the same shape. Nothing internal goes out: an unexpected error is a 500
that says only that, and the broker or database being away is a 503 naming neither
their address nor their message; both are logged on the server with the traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator import errors

log = logging.getLogger("orchestrator.api")

MEDIA_TYPE = "application/problem+json"
MAX_LISTED = 50
"""Most validation problems listed in one answer (a hostile body could have millions)."""


class Problem(BaseModel):
    """An error, as RFC 9457 describes it; ``problems`` lists each one found."""

    type: str = Field(default="about:blank", description="No problem types of our own: see title.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What went wrong, for people.")
    problems: list[str] | None = Field(
        default=None, description="Every problem found (invalid params, invalid request fields).")


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


class HTTPProblem(Exception):
    """Raised by our own code to answer with a problem (auth, limits)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.problems = problems


def problem(status: int, detail: str, *, problems: list[str] | None = None,
            headers: dict[str, str] | None = None) -> ProblemResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail,
                   problems=problems[:MAX_LISTED] if problems is not None else None)
    return ProblemResponse(body.model_dump(exclude_none=True), status_code=status,
                           headers=headers)


def _of_error(exc: errors.OrchestratorError) -> ProblemResponse:
    if isinstance(exc, errors.ParamsError):
        return problem(422, str(exc), problems=exc.problems or [str(exc)])
    if isinstance(exc, errors.InvalidArgument | errors.DagError):
        return problem(422, str(exc), problems=[str(exc)])
    if isinstance(exc, errors.NotFound):
        return problem(404, str(exc))
    if isinstance(exc, errors.Conflict):
        return problem(409, str(exc))
    if isinstance(exc, errors.TransportError):
        log.warning("broker unavailable: %s", exc)
        return problem(503, "the broker cannot be reached: nothing was done; try again later")
    if isinstance(exc, errors.StoreError):
        log.warning("database unavailable: %s", exc)
        return problem(503, "the state database is not available; try again later")
    log.error("unexpected orchestrator error", exc_info=exc)
    return problem(500, "internal error")


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "request"


async def _validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    # The input itself is left out: it may be huge, or a secret sent by mistake.
    found = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return problem(422, f"the request is invalid: {len(found)} problem(s)", problems=found)


async def _starlette(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such route: {request.url.path[:200]}"
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not text (invalid UTF-8, say): invalid input
        # like any other JSON that does not parse, so the same 422.
        return problem(422, "the request is invalid: 1 problem(s)",
                       problems=["body: not JSON text (UTF-8)"])
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}))


async def _ours(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPProblem)
    return problem(exc.status, exc.detail, headers=exc.headers, problems=exc.problems)


async def _orchestrator(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, errors.OrchestratorError)
    return _of_error(exc)


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    store = request.app.state.client.store  # not deps: deps raises our problems
    if store.unreachable(exc):
        log.warning("database unreachable: %s", store.describe(exc))
        return problem(503, "the state database is not available; try again later")
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _starlette)
    app.add_exception_handler(HTTPProblem, _ours)
    app.add_exception_handler(errors.OrchestratorError, _orchestrator)
    app.add_exception_handler(Exception, _unexpected)


# -- documented in the OpenAPI document ---------------------------------------------------

_WHY = {401: "No valid token (Authorization: Bearer TOKEN).",
        403: "The token's role may not do this (operators only).",
        404: "No such DAG, run, task or attempt.",
        409: "The run's state does not allow it.",
        413: "The request body is too large.",
        422: "The request is invalid; `problems` lists every problem.",
        503: "The broker or the state database is not available."}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: these problems, and 401/422 every route may give."""
    wanted = sorted({401, 422, *codes})
    return {c: {"model": Problem, "description": _WHY[c]} for c in wanted}


def problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """The document says what is sent: every error's body is problem+json."""
    for item in schema.get("paths", {}).values():
        for op in item.values():
            for code, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                if code[:1] in "45" and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return schema


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413 before anything parses it: at
    once when its Content-Length says so, else as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            too_big = problem(413 if length.isdigit() else 400,
                              f"the request body is larger than {self.max_bytes} bytes"
                              if length.isdigit() else "invalid Content-Length")
            await too_big(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException: FastAPI passes it on from body parsing as it is.
                    raise StarletteHTTPException(
                        413, f"the request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)
