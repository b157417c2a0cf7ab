"""/api/v1 routes: an attempt's log, read by sequence number or followed live (SSE).

A log is complete once its attempt's outcome is not ``running``: the worker's last flush
is committed before its outcome, so chunks read after seeing the outcome are all of them.
The stream polls the store about every 0.1 s (one indexed read of the chunks after the
last one sent) and never holds a transaction open between polls.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.api import deps, schemas
from orchestrator.api.auth import Viewer
from orchestrator.api.deps import ClientDep
from orchestrator.api.problems import HTTPProblem, responses
from orchestrator.client import Client
from orchestrator.model import limits, records
from orchestrator.model.states import AttemptOutcome

router = APIRouter(tags=["logs"], dependencies=[Depends(deps.strict_query)])

POLL_S = 0.1
"""Between two reads of a followed log: well under the 0.5 s the issue allows from a
line's flush to the client."""
KEEPALIVE_S = 15.0
"""A comment line after this much silence keeps proxies from closing the stream."""
PAGE = 1000
MAX_SEQ = 2**31 - 1
"""Sequence and attempt numbers are 32-bit columns on PostgreSQL."""

RunId = Annotated[str, Path(pattern=schemas.RUN_ID_PATTERN, description="A run id.")]
TaskId = Annotated[str, Path(max_length=limits.TASK_ID_COLUMN,
                             description="A task id, or a mapped instance's (`name[3]`).")]
AttemptQ = Annotated[int | None, Query(ge=1, le=MAX_SEQ,
                                       description="The attempt (default: the latest).")]
AfterQ = Annotated[int | None, Query(ge=0, le=MAX_SEQ,
                                     description="Only chunks with a greater seq.")]


@router.get("/runs/{run_id}/tasks/{task_id}/logs", response_model=schemas.LogPage,
            responses=responses(404))
def read_logs(run_id: RunId, task_id: TaskId, _who: Viewer, client: ClientDep,
              attempt: AttemptQ = None, after: AfterQ = None,
              limit: Annotated[int, Query(ge=1, le=PAGE)] = PAGE) -> schemas.LogPage:
    """An attempt's log chunks after ``after``, in order, each with its sequence number."""
    number, outcome = client.attempt_outcome(run_id, task_id, attempt)  # before the chunks
    start = after or 0
    _, chunks = client.log_chunks(run_id, task_id, number, after=start, limit=limit)
    return schemas.LogPage(
        run_id=run_id, task_id=task_id, attempt=number, outcome=outcome,
        chunks=[schemas.LogChunkView(**c.model_dump()) for c in chunks],
        next_after=chunks[-1].seq if chunks else start,
        complete=outcome != AttemptOutcome.RUNNING and len(chunks) < limit)


_STREAM_DOC = ("Server-Sent Events: one `message` event per chunk (`id:` its seq, `data:` "
               "the chunk as JSON: seq, at, data), then `event: end` (data: attempt and "
               "outcome) once the attempt has ended and every chunk was sent.")
_EVENT = {  # OpenAPI 3.1: the schema of an event stream describes one event
    "oneOf": [
        {"type": "object", "required": ["id", "data"], "description": "A chunk.",
         "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"},
                        "event": {"const": "message"},
                        "data": {"type": "string", "contentMediaType": "application/json"}}},
        {"type": "object", "required": ["event", "data"],
         "description": "The attempt ended and every chunk was sent.",
         "properties": {"event": {"const": "end"},
                        "data": {"type": "string", "contentMediaType": "application/json"}}},
    ]}


@router.get("/runs/{run_id}/tasks/{task_id}/logs/stream", response_class=StreamingResponse,
            responses={**responses(404),
                       200: {"description": _STREAM_DOC,
                             "content": {"text/event-stream": {"schema": _EVENT}}}})
async def stream_logs(request: Request, run_id: RunId, task_id: TaskId, _who: Viewer,
                      client: ClientDep, attempt: AttemptQ = None, after: AfterQ = None,
                      last_event_id: Annotated[str | None, Header(
                          alias="Last-Event-ID", max_length=20,
                          description="The last seq received: the stream resumes after it "
                          "(EventSource sends it on reconnecting; wins over `after`).")] = None,
                      ) -> StreamingResponse:
    """Follow an attempt's log live; resumes after ``Last-Event-ID`` (or ``after``)."""
    start = after or 0
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isdigit() or int(text) > MAX_SEQ:
            raise HTTPProblem(422, "Last-Event-ID must be a sequence number",
                              problems=["header.Last-Event-ID: not a sequence number"])
        start = int(text)
    # Resolved before the answer starts, so an unknown run, task or attempt is a 404.
    number, _ = await run_in_threadpool(client.attempt_outcome, run_id, task_id, attempt)
    return StreamingResponse(_events(client, run_id, task_id, number, start),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(chunk: records.LogChunk) -> str:
    data = json.dumps({"seq": chunk.seq, "at": chunk.at.isoformat(), "data": chunk.data},
                      ensure_ascii=False)
    return f"id: {chunk.seq}\ndata: {data}\n\n"


async def _events(client: Client, run_id: str, task_id: str, attempt: int,
                  after: int) -> AsyncIterator[str]:
    last_sent = time.monotonic()
    while True:
        _, outcome = await run_in_threadpool(client.attempt_outcome, run_id, task_id, attempt)
        _, chunks = await run_in_threadpool(client.log_chunks, run_id, task_id, attempt,
                                            after=after, limit=PAGE)
        if chunks:
            yield "".join(_event(c) for c in chunks)
            after, last_sent = chunks[-1].seq, time.monotonic()
            if len(chunks) == PAGE:
                continue  # more are waiting: no pause
        if outcome != AttemptOutcome.RUNNING:
            end = json.dumps({"attempt": attempt, "outcome": outcome.value})
            yield f"event: end\ndata: {end}\n\n"
            return
        if time.monotonic() - last_sent >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_S)
