"""Helpers of the REST API tests: the app over a test's Client, tokens, problem checks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from orchestrator.api.app import create_app
from orchestrator.client import Client
from tests.support import free_port, wait_until

API = "/api/v1"
PROBLEM = "application/problem+json"


def token(client: Client, role: str) -> str:
    """A fresh token of ``role`` (a name of its own, so tests never collide)."""
    _, made = client.store.create_token(f"test-{role}-{uuid.uuid4().hex[:10]}", role)
    return made


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on uvicorn in a thread of this process, on a free loopback port, until the
    block ends: real HTTP, so streams arrive as they are sent."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test-server", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30,
                   what="the in-process server to start")
        assert server.started, "the in-process server did not start"
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the in-process server did not stop"


@contextmanager
def api(client: Client, bearer: str | None = None) -> Iterator[httpx.Client]:
    """The whole app over ``client`` (its real database and broker), served in this
    process; an httpx client with ``bearer`` as its token."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    with serving(create_app(client.settings, client=client)) as url, \
            httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer, checked for its shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body
