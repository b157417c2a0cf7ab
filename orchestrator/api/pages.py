"""The run view: server-rendered pages over the same Client as the API.

This module: signing in and out, the DAG list and a DAG's page with its trigger form;
pages_grid.py has the runs grid; pages_runs.py a run, its live events and the log view.
``router`` carries them all (create_app includes it with one line). Pages are plain
``def`` routes (the client is synchronous, so FastAPI runs them in its thread pool); a
form post reads its body asynchronously, then does its work in that pool too.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator import errors
from orchestrator.api import (
    auth,
    deps,
    pages_alerts,
    pages_forms,
    pages_grid,
    pages_pools,
    pages_runs,
)
from orchestrator.api import pages_common as common
from orchestrator.api.problems import HTTPProblem
from orchestrator.model.compiled import CompiledDag

router = APIRouter(include_in_schema=False)
router.include_router(common.router)
router.include_router(pages_grid.router)
router.include_router(pages_runs.router)
router.include_router(pages_pools.router)
router.include_router(pages_alerts.router)

RECENT = 12
"""Runs shown per DAG on the DAG list."""
svg_of = common.svg_of


# -- signing in -----------------------------------------------------------------------------

@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return common.render(request, "login.html", next=common.safe_next(next), error=None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=auth.MAX_TOKEN_LENGTH * 4)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    token = token.strip()
    record = (deps.client(request).store.principal(token)
              if token and len(token) <= auth.MAX_TOKEN_LENGTH and token.isascii() else None)
    if record is None:
        return common.render(request, "login.html", status=401, next=common.safe_next(next),
                             error="That token is not valid (unknown, revoked or mistyped).")
    answer = RedirectResponse(common.safe_next(next), status_code=303,
                              headers=common.SECURITY_HEADERS)
    answer.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/",
                      secure=request.url.scheme == "https")
    return answer


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if request.cookies.get(auth.COOKIE):
        try:
            auth.check_csrf(request, csrf)
        except HTTPProblem as exc:
            return common.problem_page(request, exc)
    answer = RedirectResponse("/login", status_code=303, headers=common.SECURITY_HEADERS)
    answer.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
    return answer


# -- the DAG list -----------------------------------------------------------------------------

@router.get("/")
def dag_list(request: Request) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    bag = deps.dagbag(request)  # rescanned every few seconds: new files show up
    dags = sorted(bag.dags.values(), key=lambda d: d.id)
    recent = deps.client(request).store.recent_runs([d.id for d in dags], RECENT)
    states = common.schedules(request, dags)
    items = [{"dag": d, "runs": recent.get(d.id, []), "sched": states.get(d.id)}
             for d in dags]
    load_errors = sorted((path, str(e)) for path, e in bag.errors.items())
    return common.render(request, "dags.html", dags=items, load_errors=load_errors)


# -- a DAG and its trigger form ---------------------------------------------------------------

def _dag_or_404(request: Request, dag_id: str) -> CompiledDag | HTMLResponse:
    try:
        return deps.dagbag(request).get(dag_id)
    except errors.NotFound:
        return common.error_page(request, 404, "No such DAG",
                                 f"No DAG {dag_id!r} is loaded from the DAG folder.")


def _dag_page(request: Request, dag: CompiledDag, *, status: int = 200,
              submitted: dict[str, str] | None = None,
              field_errors: dict[str, list[str]] | None = None,
              form_errors: list[str] | None = None,
              principal: auth.Principal | None = None) -> HTMLResponse:
    runs = deps.client(request).store.recent_runs([dag.id], 10)[dag.id]
    return common.render(request, "dag.html", status=status, principal=principal, dag=dag,
                         graph=svg_of(dag),
                         fields=pages_forms.fields(dag.spec, submitted),
                         field_errors=field_errors or {}, form_errors=form_errors or [],
                         runs=runs, sched=common.schedules(request, [dag]).get(dag.id),
                         backfills=deps.client(request).store.backfills(dag.id, 10))


@router.get("/dags/{dag_id}")
def dag_page(request: Request, dag_id: str) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    dag = _dag_or_404(request, dag_id)
    return dag if isinstance(dag, Response) else _dag_page(request, dag)


@router.post("/dags/{dag_id}/trigger")
async def trigger(request: Request, dag_id: str) -> Response:
    form = await request.form(max_fields=1000)
    csrf = form.get("csrf")
    text = {str(k): str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(
        _trigger, request, dag_id, csrf if isinstance(csrf, str) else None, text)


def _trigger(request: Request, dag_id: str, csrf: str | None, form: dict[str, str]) -> Response:
    who = common.form_user(request, csrf)
    if isinstance(who, Response):
        return who
    dag = _dag_or_404(request, dag_id)
    if isinstance(dag, Response):
        return dag
    client = deps.client(request)
    text = pages_forms.submitted_text(form, dag.spec)
    again = functools.partial(_dag_page, request, dag, submitted=text, principal=who)
    values, by_field, general = pages_forms.check(dag.spec, text,
                                                  client.settings.limits.max_params_bytes)
    if by_field or general:
        return again(status=422, field_errors=by_field, form_errors=general)
    try:
        run_id = client.submit(dag.id, values)
    except errors.ParamsError as exc:  # the same check again at submit: nothing written
        by_field, general = pages_forms.attribute(dag.spec, exc.problems)
        return again(status=422, field_errors=by_field, form_errors=general)
    except (errors.TransportError, errors.StoreError):
        return again(status=503, form_errors=[
            "The broker or the database cannot be reached: nothing was submitted. "
            "Try again in a moment."])
    except (errors.DagError, errors.Conflict) as exc:
        return again(status=409, form_errors=[str(exc)])
    return RedirectResponse(f"/runs/{run_id}", status_code=303, headers=common.SECURITY_HEADERS)
