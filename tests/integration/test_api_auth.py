"""Every route of the server needs a token but the public few, viewers cannot act, the
cookie counts for GET only, and a token is never echoed; walked from ``app.routes``, so a
route added later cannot escape the walk."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.client import Client
from orchestrator.store.tables import api_tokens
from tests.api_support import API, PROBLEM, api, problem, serving, token

pytestmark = pytest.mark.integration

PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
          ("GET", "/static/{name}")}
"""Reachable without a token: health, the sign-in page (and signing out), its assets."""
API_LIKE = re.compile(r"^/(api/|metrics$|openapi\.json$|docs(/|$))")
"""Machine routes: 401 problem+json without a token (pages redirect to /login instead)."""


def _routes(app: FastAPI) -> list[RouteContext]:
    """Every route with its full path (FastAPI keeps included routers unflattened)."""
    return list(iter_route_contexts(app.routes))


def _operator_only(route: RouteContext) -> bool:
    original = route.original_route
    assert isinstance(original, APIRoute), route
    stack = list(original.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is auth.require_operator:
            return True
        stack.extend(dep.dependencies)
    return False


@pytest.fixture
def finished(client: Client) -> str:
    run_id = client.submit("api_quick", {"n": 1})
    client.wait(run_id, timeout=60)
    return run_id


def _calls(client: Client, run_id: str) -> Iterator[tuple[str, str, str]]:
    """(method, route path, a URL for it) for every method of every route."""
    known = {"dag_id": "api_quick", "run_id": run_id, "task_id": "api_step",
             "name": "swagger-ui.css"}
    app = create_app(client.settings, client=client)
    seen = 0
    for route in _routes(app):
        path = route.path
        assert isinstance(path, str), route
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: known.get(m.group(1), "x"), path)
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                seen += 1
                yield method, path, url
    assert seen >= 20, "the walk found too few routes: is the app complete?"


class _Answer:
    def __init__(self, r: httpx.Response, text: str) -> None:
        self.status_code, self.headers, self.text = r.status_code, r.headers, text

    def json(self) -> Any:
        return json.loads(self.text)


def _status(http: httpx.Client, method: str, url: str) -> _Answer:
    """The answer's head, and its body unless it is an event stream (which may not end)."""
    with http.stream(method, url, json={} if method != "GET" else None) as r:
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            return _Answer(r, "")
        r.read()
        return _Answer(r, r.text)


def test_every_route_needs_a_token_and_viewers_cannot_act(client: Client,
                                                          finished: str) -> None:
    app = create_app(client.settings, client=client)
    api_routes = [r for r in _routes(app) if isinstance(r.original_route, APIRoute)
                  and API_LIKE.match(r.path or "")]
    # operators only: exactly the API's routes that change something
    acting = {r.path for r in api_routes if (r.methods or set()) - {"GET", "HEAD"}}
    assert {r.path for r in api_routes if _operator_only(r)} == acting
    assert len(acting) == 9, acting
    viewer, operator = token(client, "viewer"), token(client, "operator")
    try:
        _walk(client, finished, app, viewer, operator)
    finally:
        client.unpause("api_quick")  # the walk's POST .../pause: other tests submit it


def _walk(client: Client, finished: str, app: FastAPI, viewer: str, operator: str) -> None:
    with serving(app) as base, httpx.Client(base_url=base, timeout=60) as anon, \
            httpx.Client(base_url=base, timeout=60,
                         headers={"Authorization": f"Bearer {viewer}"}) as as_viewer, \
            httpx.Client(base_url=base, timeout=60,
                         headers={"Authorization": f"Bearer {operator}"}) as as_operator:
        for method, path, url in _calls(client, finished):
            where = f"{method} {path}"
            public, machine = (method, path) in PUBLIC, bool(API_LIKE.match(path))
            r = _status(anon, method, url)
            if public:
                assert r.status_code < 500, where
            elif machine:
                assert r.status_code == 401, (where, r.status_code, r.text[:200])
                assert r.headers["content-type"].startswith(PROBLEM), where
                assert r.headers["www-authenticate"] == "Bearer", where
            else:  # a page: to the sign-in page, or refused
                assert r.status_code in (303, 401, 403), (where, r.status_code)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login"), where
            acts = method not in ("GET", "HEAD") and not public
            r = _status(as_viewer, method, url)
            if acts:
                assert r.status_code in ((403,) if machine else (303, 401, 403)), (
                    where, r.status_code, r.text[:200])
                if machine:
                    assert "only operators" in r.json()["detail"], where
            elif not public:
                assert r.status_code < 500 and r.status_code not in (401, 403), (
                    where, r.status_code, r.text[:200])
            r = _status(as_operator, method, url)
            assert r.status_code < 500, (where, r.status_code, r.text[:200])
            if not public and (machine or method == "GET"):
                assert r.status_code not in (401, 403), (where, r.status_code, r.text[:200])
            for secret in (viewer, operator):
                assert secret not in r.text, where


def test_the_cookie_counts_for_get_only_and_bad_tokens_are_refused(client: Client) -> None:
    token_id, operator = client.store.create_token(f"test-cookie-{uuid.uuid4().hex[:8]}",
                                                   "operator")
    with api(client) as http:
        http.cookies.set(auth.COOKIE, operator)
        assert http.get(f"{API}/dags").status_code == 200
        r = http.post(f"{API}/dags/api_quick/runs", json={})  # a cross-site form could
        assert "a valid token is required" in problem(r, 401)["detail"]
        http.cookies.clear()
        for header in ("", "Bearer", "Basic " + operator, "Bearer orch_nope",
                       "Bearer " + "x" * 5000, "Bearer " + operator + "x",
                       "Bearer " + operator[:-1], "Bearer orch_\u00e9t\u00e9".encode()):
            r = http.get(f"{API}/runs", headers={"Authorization": header})
            problem(r, 401)
            assert operator not in r.text and operator not in str(r.headers)
        assert http.get(f"{API}/runs",
                        headers={"Authorization": "bearer " + operator}).status_code == 200
        client.store.revoke_token(token_id)
        problem(http.get(f"{API}/runs", headers={"Authorization": f"Bearer {operator}"}), 401)


def test_last_use_is_written_at_most_once_a_minute(client: Client) -> None:
    made = token(client, "viewer")
    with api(client, made) as http:
        record = client.store.principal(made)
        assert record is not None
        first = _last_used(client, record.id)
        assert first is not None
        for _ in range(5):
            assert http.get(f"{API}/dags").status_code == 200
        assert _last_used(client, record.id) == first  # no write per request
        earlier = first - dt.timedelta(minutes=2)
        with client.store.engine.begin() as conn:
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == record.id)
                         .values(last_used_at=earlier))
        assert http.get(f"{API}/dags").status_code == 200
        now = _last_used(client, record.id)
        assert now is not None and now > first


def _last_used(client: Client, token_id: str) -> dt.datetime | None:
    return next(t.last_used_at for t in client.store.list_tokens() if t.id == token_id)
