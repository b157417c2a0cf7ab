"""The server: the REST API under /api/v1, health, and (added by their modules) the run
view's pages and /metrics, on one FastAPI app over one Client.

Routes are plain ``def`` functions: the client is synchronous (SQLAlchemy, Celery's
producer), so FastAPI runs each in its thread pool; only the log stream is async, and
it reads the store in a thread too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from orchestrator.api import (
    docs,
    metrics_route,
    pages,
    problems,
    routes_alerts,
    routes_backfills,
    routes_control,
    routes_dags,
    routes_logs,
    routes_runs,
)
from orchestrator.api.problems import HTTPProblem
from orchestrator.client import Client
from orchestrator.settings import Settings

API = "/api/v1"
BODY_SLACK = 64 * 1024
"""Bytes a request body may have beyond 4 x ORCH_MAX_PARAMS_BYTES (JSON escapes can make
the text of params up to 6 x their size as stored; past 4 x it is refused unread)."""


class Health(BaseModel):
    status: str
    database: str


def create_app(settings: Settings, *, client: Client | None = None) -> FastAPI:
    """The app; builds its own Client (checking the schema is current) unless given one,
    and closes only the one it built."""
    own = client is None
    the_client = client if client is not None else Client(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if own:
            the_client.close()

    # /openapi.json and /docs are served by api/docs.py, behind a token like the rest.
    app = FastAPI(title="orchestrator", version="1", lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None,
                  description="Runs, tasks, attempts and their logs; trigger, cancel and "
                  "rerun. Every route but /healthz needs `Authorization: Bearer TOKEN`.")
    app.state.client = the_client
    app.state.settings = settings
    problems.install(app)
    app.add_middleware(problems.BodyLimit,
                       max_bytes=4 * settings.limits.max_params_bytes + BODY_SLACK)

    @app.get("/healthz", tags=["health"], response_model=Health,
             responses={503: {"model": problems.Problem,
                              "description": "The state database does not answer."}})
    def healthz() -> Health:
        """No token needed: says whether the server answers and its database does."""
        try:
            the_client.store.ping()
        except Exception as exc:
            problems.log.warning("health check: database does not answer: %s",
                                 the_client.store.describe(exc))
            raise HTTPProblem(503, "the state database does not answer") from None
        return Health(status="ok", database="ok")

    for router in (routes_dags.router, routes_runs.router, routes_logs.router,
                   routes_control.router, routes_backfills.router, routes_alerts.router):
        app.include_router(router, prefix=API)
    app.include_router(docs.router)
    # The run view's pages and /metrics plug in here, one line each.
    app.include_router(metrics_route.router)
    app.include_router(pages.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            app.openapi_schema = problems.problem_media_types(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
