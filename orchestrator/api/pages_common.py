"""What every page of the run view shares: the templates, who is signed in, the security
headers, HTML error pages, formatting of times, and the static files.

Templates autoescape everything; the pages carry no inline script or style, so the
Content-Security-Policy allows only this server's own ``/static`` files. Values reach
JavaScript only through escaped ``data-*`` attributes or JSON answers, never as code.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from orchestrator.api import auth, deps, graph
from orchestrator.api.problems import HTTPProblem
from orchestrator.model import records
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState, TaskState

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css",
                "favicon.svg": "image/svg+xml"}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""On every page and fragment: pages show run data, so no cache keeps them either."""

NONE = "\u2013"
"""Shown for a time or duration not known (yet)."""
RUN_STATES = [s.value for s in RunState]
TASK_STATES = [s.value for s in TaskState]

router = APIRouter(include_in_schema=False)

MAX_LAYOUTS = 256
_layouts: dict[str, graph.Layout] = {}
_layouts_lock = threading.Lock()


def layout_of(dag: CompiledDag) -> graph.Layout:
    """A DAG version's layout, computed once per process (a version never changes)."""
    found = _layouts.get(dag.version)
    if found is None:
        found = graph.layout(dag.plan.order, dag.plan.upstream)
        with _layouts_lock:
            if len(_layouts) >= MAX_LAYOUTS:
                _layouts.pop(next(iter(_layouts)))
            _layouts[dag.version] = found
    return found


def svg_of(dag: CompiledDag, views: dict[str, graph.NodeView] | None = None) -> Markup:
    """The DAG's graph; without ``views``, only which tasks are mapped."""
    if views is None:
        views = {t: graph.NodeView(mapped=True) for t in dag.plan.map_over}
    return graph.render_svg(layout_of(dag), views, label=f"Graph of DAG {dag.id}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return NONE
    return _duration(((end or dt.datetime.now(dt.UTC)) - start).total_seconds())


def when(value: dt.datetime | None) -> Markup:
    """A ``<time>`` in UTC; app.js shows it in the reader's own zone."""
    if value is None:
        return Markup(NONE)
    utc = value.astimezone(dt.UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S UTC"))


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _url_part(value: str) -> str:
    """A path segment (task ids of mapped instances have brackets)."""
    return quote(value, safe="")


env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True,
                         lstrip_blocks=True)
env.filters.update(duration=_duration, when=when, pretty_json=pretty_json, urlpart=_url_part)
env.globals.update(duration_of=duration, RUN_STATES=RUN_STATES, TASK_STATES=TASK_STATES)


def csrf_of(request: Request) -> str:
    token = request.cookies.get(auth.COOKIE)
    return auth.csrf_token(token) if token else ""


def render(request: Request, template: str, status: int = 200, *,
           principal: auth.Principal | None = None, **context: Any) -> HTMLResponse:
    """A page; ``principal``: the form post's (the cookie alone names nobody on a POST)."""
    principal = principal or auth.authenticate(request)
    body = env.get_template(template).render(
        principal=principal, csrf=csrf_of(request), path=request.url.path,
        is_operator=principal is not None and principal.role == auth.Role.OPERATOR,
        **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def fragment(template: str, **context: Any) -> HTMLResponse:
    """A piece of a page (a task's section) for app.js to swap in."""
    body = env.get_template(template).render(**context)
    return HTMLResponse(body, headers=SECURITY_HEADERS)


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303,
                            headers=SECURITY_HEADERS)


def schedules(request: Request, dags: Sequence[CompiledDag]) -> dict[str, records.DagState]:
    """The pause state and schedule of these DAGs (those a coordinator registered or
    someone paused: the others have no row, and are neither)."""
    store = deps.client(request).store
    found = store.dag_states([d.id for d in dags]) if dags else []
    return {s.dag_id: s for s in found}


def signed_in(request: Request) -> auth.Principal | RedirectResponse:
    """The page's reader, or the redirect to the sign-in page."""
    found = auth.authenticate(request)
    return found if found is not None else to_login(request)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if (not value or not value.startswith("/") or value.startswith("//")
            or "\\" in value or any(ord(c) < 32 for c in value)):
        return "/"
    return value


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status=status, title=title, detail=detail)


def problem_page(request: Request, exc: HTTPProblem) -> HTMLResponse:
    titles = {401: "Sign in again", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    page = error_page(request, exc.status, titles.get(exc.status, "Error"), exc.detail)
    for k, v in (exc.headers or {}).items():
        page.headers[k] = v
    return page


def form_user(request: Request, csrf_value: str | None, *,
              operator: bool = True) -> auth.Principal | HTMLResponse:
    """The principal of a page's POST form (CSRF checked), or the HTML page refusing it
    (403: wrong or missing CSRF value, or a viewer; 401: the session's token is gone)."""
    try:
        return auth.form_principal(request, csrf_value, operator=operator)
    except HTTPProblem as exc:
        return problem_page(request, exc)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The run view's own script, style sheet and icon: a fixed list, nothing else."""
    media = STATIC_FILES.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=media,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
