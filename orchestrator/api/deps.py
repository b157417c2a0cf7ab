"""What routes depend on: the app's one Client, its settings, its DAG folder kept fresh."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from orchestrator.api.problems import HTTPProblem
from orchestrator.authoring.discovery import DagBag
from orchestrator.client import Client
from orchestrator.observability.masking import Masker, masker_for
from orchestrator.settings import Settings

RESCAN_EVERY_S = 2.0
"""A DAG file added or edited shows in the server within this (a rescan only stats the
folder unless something changed)."""
_rescan = threading.Lock()


def client(request: Request) -> Client:
    """The app's Client (``app.state.client``): one store, one producer, one DAG folder
    shared by every request (SQLAlchemy's pool and the producer are thread-safe)."""
    found: Client = request.app.state.client
    return found


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def masker(request: Request) -> Masker:
    """The server's masker of its settings' secrets, built once per app."""
    state = request.app.state
    if getattr(state, "masker", None) is None:
        state.masker = masker_for(settings(request))
    found: Masker = state.masker
    return found


def dagbag(request: Request) -> DagBag:
    """The client's DAG folder, looked at again at most every RESCAN_EVERY_S, so the
    server sees new and edited DAG files without a restart (the CLI reads the folder on
    every command)."""
    c = client(request)
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "dags_scanned_at", 0.0) >= RESCAN_EVERY_S:
        with _rescan:  # one request rescans; the others use the bag as it was
            if now - getattr(state, "dags_scanned_at", 0.0) >= RESCAN_EVERY_S:
                c.dagbag.refresh()
                state.dags_scanned_at = time.monotonic()
    return c.dagbag


def _query_names(route: APIRoute) -> frozenset[str]:
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        found.update(f.alias for f in dependant.query_params)
        stack.extend(dependant.dependencies)
    return frozenset(found)


def strict_query(request: Request) -> None:
    """Refuse a query parameter the route does not take (``?stat=failed`` would list every
    run) or given more than once (none takes a list; FastAPI would keep the last)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    counts = Counter(k for k, _ in request.query_params.multi_items())
    problems = [f"query.{k[:100]}: given more than once"
                for k, n in sorted(counts.items()) if n > 1 and k in known]
    problems += [f"query.{k[:100]}: unknown parameter; this route takes: "
                 f"{', '.join(sorted(known)) or 'none'}" for k in sorted(counts) if k not in known]
    if problems:
        raise HTTPProblem(422, f"the request is invalid: {len(problems)} problem(s)",
                          problems=problems[:20])


ClientDep = Annotated[Client, Depends(client)]
SettingsDep = Annotated[Settings, Depends(settings)]
DagBagDep = Annotated[DagBag, Depends(dagbag)]
