"""The run view's pages about a run: the run (and its live events), cancel
and rerun, and an attempt's log.

The run page updates itself from ``GET /runs/{id}/events``: the server reads the run's
state and its tasks' states (two indexed statements) every ``POLL`` seconds and sends a
snapshot only when something changed, then ends the stream when the run has. A task
whose snapshot changed is fetched again as HTML (``?task=ID``) by app.js, so attempts,
errors and tracebacks appear without a reload and are rendered (and escaped) in one place.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from orchestrator import errors
from orchestrator.api import auth, deps, graph, pages_alerts
from orchestrator.api import pages_common as common
from orchestrator.client import Client
from orchestrator.model import records, sealed
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import FINISHED_RUN, TaskState

router = APIRouter(include_in_schema=False)

POLL = 0.25
"""Seconds between two reads of a watched run (the brief's bound on a state's delay)."""
KEEPALIVE = 15.0
STREAM_SECONDS = 3600.0
"""A stream ends after this; EventSource reconnects by itself."""
SHOWN_INSTANCES = 100
_ATTENTION = (TaskState.FAILED, TaskState.UP_FOR_RETRY, TaskState.RUNNING)


def sig(state: str, attempt: int | None, count: int | None, done: int | None,
        failed: int | None) -> str:
    """What a task's section shows changes only when this does."""
    return f"{state}|{attempt}|{count}|{done}|{failed}"


def _sig_of(ti: records.TaskInstance) -> str:
    return sig(ti.state.value, ti.attempt, ti.map_count, ti.map_done, ti.map_failed)


def _run_or_page(request: Request, run_id: str) -> records.Run | Response:
    client = deps.client(request)
    try:
        full = client.resolve(run_id)
        if full != run_id:
            return RedirectResponse(f"/runs/{full}", status_code=303)
        return _masked(request, client.store.get_run(run_id, with_results=False))
    except errors.AmbiguousRun as exc:
        return common.error_page(request, 404, "Which run?", str(exc))
    except errors.NotFound:
        return common.error_page(request, 404, "No such run", f"There is no run {run_id!r}.")


def _dag_of(request: Request, run: records.Run) -> CompiledDag | None:
    """The DAG version the run was submitted with (its graph), else the loaded one."""
    try:
        if run.dag_version:
            return deps.client(request).store.compiled(run.dag_version)
        return deps.dagbag(request).get(run.dag_id)
    except errors.NotFound:
        return None


def _masked(request: Request, run: records.Run) -> records.Run:
    """The run with its errors and tracebacks masked, as the API masks them: they quote
    whatever the failing code had, a setting's secret in a connection error, say."""
    mask = deps.masker(request).mask

    def m(value: str | None) -> str | None:
        return None if value is None else mask(value)

    tasks = {}
    for task_id, ti in run.tasks.items():
        attempts = [a.model_copy(update={"error_message": m(a.error_message),
                                         "traceback": m(a.traceback)}) for a in ti.attempts]
        tasks[task_id] = ti.model_copy(update={"error": m(ti.error), "attempts": attempts})
    params = deps.masker(request).mask_value(sealed.shown(run.params))  # secret ones: ***
    return run.model_copy(update={"tasks": tasks, "params": params})


# -- a run ----------------------------------------------------------------------------------

def _instances(run: records.Run, parent: str) -> dict[str, Any]:
    found = sorted((t for t in run.tasks.values() if t.map_parent == parent),
                   key=lambda t: (t.state not in _ATTENTION, t.map_index or 0))
    return {"shown": found[:SHOWN_INSTANCES], "hidden": max(0, len(found) - SHOWN_INSTANCES)}


def _views(run: records.Run, dag: CompiledDag) -> dict[str, graph.NodeView]:
    out = {}
    for t in dag.plan.order:
        ti = run.tasks.get(t)
        counts = None
        if ti is not None and ti.map_count is not None:
            counts = f"{(ti.map_done or 0) - (ti.map_failed or 0)}/{ti.map_count}"
        out[t] = graph.NodeView(state=ti.state.value if ti else None, counts=counts,
                                mapped=t in dag.plan.map_over, href=f"#task-{t}")
    return out


def failed_of(run: records.Run) -> list[records.TaskInstance]:
    """The tasks whose attempts failed (a mapped task's failed instances, not the mapped
    task itself: their tracebacks are the story)."""
    return [t for t in run.tasks.values() if t.state == TaskState.FAILED
            and not (t.map_count is not None and t.map_failed)]


def _run_page(request: Request, run: records.Run, *, status: int = 200,
              message: str | None = None, message_kind: str = "error",
              principal: auth.Principal | None = None) -> HTMLResponse:
    client = deps.client(request)
    dag = _dag_of(request, run)
    order = list(dag.plan.order) if dag else []
    order += [t for t, ti in run.tasks.items() if ti.map_parent is None and t not in order]
    top = [run.tasks[t] for t in order if t in run.tasks]
    sections = [(ti, _instances(run, ti.task_id) if ti.map_count is not None else None,
                 _sig_of(ti)) for ti in top]
    svg = common.svg_of(dag, _views(run, dag)) if dag else ""
    counts: dict[str, int] = {}
    for ti in top:
        counts[ti.state.value] = counts.get(ti.state.value, 0) + 1
    return common.render(request, "run.html", status=status, principal=principal, run=run,
                         graph=svg,
                         sections=sections, failed=failed_of(run), task_order=order,
                         counts=counts,
                         flower_url=client.settings.server.flower_url.rstrip("/"),
                         message=message, message_kind=message_kind,
                         **pages_alerts.context(request, run.id, finished=run.finished))


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, task: str | None = None,
             part: str | None = None) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    run = _run_or_page(request, run_id)
    if isinstance(run, Response):
        return run
    if task is not None:  # app.js: one task's section again, after its state changed
        ti = run.tasks.get(task)
        if ti is None:
            return common.error_page(request, 404, "No such task", f"No task {task!r}.")
        return common.fragment(
            "_task.html", run=run, fragment_task=ti, fragment_sig=_sig_of(ti),
            fragment_instances=_instances(run, task) if ti.map_count is not None else None,
            flower_url=deps.client(request).settings.server.flower_url.rstrip("/"))
    if part == "header":  # app.js: the header again once the run ended (rerun, not cancel)
        dag = _dag_of(request, run)
        principal = auth.authenticate(request)
        return common.fragment(
            "_run_header.html", run=run, csrf=common.csrf_of(request), message=None,
            failed=failed_of(run),
            message_kind="", task_order=list(dag.plan.order) if dag else [],
            is_operator=principal is not None and principal.role == auth.Role.OPERATOR)
    return _run_page(request, run)


def snapshot(client: Client, run_id: str) -> tuple[dict[str, Any], bool]:
    snap = client.store.run_snapshot(run_id)
    tasks = {t: {"state": c.state, "counts": c.counts,
                 "sig": sig(c.state, c.attempt, c.map_count, c.map_done, c.map_failed)}
             for t, c in snap.cells.items()}
    body = {"run": {"id": snap.id, "state": snap.state.value,
                    "done": snap.total_tasks - snap.unfinished, "total": snap.total_tasks},
            "tasks": tasks}
    return body, snap.state in FINISHED_RUN


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, run_id: str) -> Response:
    """Server-Sent Events: ``snapshot`` (JSON) whenever the run or a task changed, then
    ``end`` once the run has finished. The cookie (or a bearer token) authenticates."""
    client = deps.client(request)
    who = await run_in_threadpool(auth.authenticate, request)
    if who is None:
        return Response("sign in first", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": "Bearer"})
    try:
        first, done = await run_in_threadpool(snapshot, client, run_id)
    except errors.NotFound:
        return Response("no such run", status_code=404, media_type="text/plain")

    async def events() -> AsyncIterator[str]:
        body, finished = first, done
        last = ""
        started = quiet = time.monotonic()
        while True:
            text = json.dumps(body, separators=(",", ":"))
            if text != last:
                yield f"event: snapshot\ndata: {text}\n\n"
                last, quiet = text, time.monotonic()
            elif time.monotonic() - quiet > KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet = time.monotonic()
            if finished:
                yield "event: end\ndata: {}\n\n"
                return
            if time.monotonic() - started > STREAM_SECONDS:
                return
            await asyncio.sleep(POLL)
            body, finished = await run_in_threadpool(snapshot, client, run_id)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# -- cancel and rerun -----------------------------------------------------------------------

def _act(request: Request, run_id: str, csrf: str, action: str,
         from_task: str | None = None) -> Response:
    who = common.form_user(request, csrf)
    if isinstance(who, Response):
        return who
    client = deps.client(request)
    try:
        run = _masked(request, client.store.get_run(run_id, with_results=False))
    except errors.NotFound:
        return common.error_page(request, 404, "No such run", f"There is no run {run_id!r}.")
    try:
        if action == "cancel":
            client.cancel(run_id)
        else:
            client.rerun(run_id, from_task=from_task or None)
    except errors.Conflict as exc:
        return _run_page(request, run, status=409, message=str(exc), principal=who)
    except errors.NotFound as exc:
        return _run_page(request, run, status=422, message=str(exc), principal=who)
    except (errors.TransportError, errors.StoreError):
        return _run_page(request, run, status=503, principal=who, message=(
            "The broker or the database cannot be reached: nothing was done. Try again."))
    return RedirectResponse(f"/runs/{run_id}", status_code=303, headers=common.SECURITY_HEADERS)


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str,
           csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    return _act(request, run_id, csrf, "cancel")


@router.post("/runs/{run_id}/rerun")
def rerun(request: Request, run_id: str, csrf: Annotated[str, Form(max_length=200)] = "",
          from_task: Annotated[str, Form(max_length=200)] = "") -> Response:
    return _act(request, run_id, csrf, "rerun", from_task)


# -- an attempt's log -----------------------------------------------------------------------

@router.get("/runs/{run_id}/tasks/{task_id}/log")
def log_page(request: Request, run_id: str, task_id: str,
             attempt: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    run = _run_or_page(request, run_id)
    if isinstance(run, Response):
        return run
    ti = run.tasks.get(task_id)
    if ti is None:
        return common.error_page(request, 404, "No such task",
                                 f"Run {run_id[:8]} has no task {task_id!r}.")
    if not ti.attempts:
        return common.error_page(request, 404, "No log yet",
                                 f"Task {task_id!r} has not started, so it has no log yet.")
    chosen = next((a for a in ti.attempts if a.attempt == attempt), None) if attempt else \
        ti.attempts[-1]
    if chosen is None:
        return common.error_page(request, 404, "No such attempt",
                                 f"Task {task_id!r} has no attempt {attempt}.")
    client = deps.client(request)
    parts: list[str] = []
    after = 0
    while True:
        _, chunks = client.log_chunks(run_id, task_id, chosen.attempt, after=after)
        if not chunks:
            break
        parts += [c.data for c in chunks]
        after = chunks[-1].seq
    live = chosen.outcome.value == "running"
    return common.render(request, "log.html", run=run, task_id=task_id, attempt=chosen,
                         attempts=ti.attempts, text="".join(parts), after=after, live=live)
