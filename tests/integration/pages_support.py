"""What the run view's page tests share: the app in process over a test's Client,
signed-in HTTP clients per role, and runs written straight through the store (never sent,
so they stay as the test leaves them)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from orchestrator import errors
from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.client import Client
from orchestrator.model.compiled import CompiledDag
from tests.api_support import serving
from tests.integration.html_tree import Element, parse

HOSTILE = "</textarea></pre>\"'><script>alert('x')</script><img src=x onerror=alert(1)>&amp;"
"""Closes every element and attribute a page could put it in, then tries markup."""


class Web:
    """The app over ``client``, served in this process (tests.api_support.serving);
    ``as_role(role)`` gives an HTTP client signed in through the login form (redirects
    are not followed, so tests see them)."""

    def __init__(self, client: Client, exits: ExitStack) -> None:
        self.client = client
        self.exits = exits
        self.url = exits.enter_context(serving(create_app(client.settings, client=client)))
        self.made: list[str] = []

    def anonymous(self) -> httpx.Client:
        return self.exits.enter_context(httpx.Client(base_url=self.url, timeout=60))

    def as_role(self, role: str) -> httpx.Client:
        _, token = self.client.store.create_token(f"pages-{role}-{uuid.uuid4().hex[:8]}", role)
        tc = self.anonymous()
        answer = tc.post("/login", data={"token": token, "next": "/"})
        assert answer.status_code == 303, answer.text
        assert tc.cookies.get(auth.COOKIE) == token
        return tc

    def csrf(self, tc: httpx.Client) -> str:
        token = tc.cookies.get(auth.COOKIE)
        assert token
        return auth.csrf_token(token)

    def store_run(self, dag: CompiledDag, params: dict[str, Any] | None = None) -> str:
        """A run written by the store alone: running, its first tasks queued, no message."""
        run_id = uuid.uuid4().hex
        self.client.store.create_run(dag, run_id=run_id, params=params or {})
        self.made.append(run_id)
        return run_id

    def close(self) -> None:
        for run_id in self.made:
            if not self.client.store.get_run(run_id, with_results=False).finished:
                # Nothing of it was sent, but a coordinator on the shared database may
                # have sent and ended it since: then there is nothing left to cancel.
                with contextlib.suppress(errors.Conflict):
                    self.client.store.cancel(run_id)


@contextmanager
def web_of(client: Client) -> Iterator[Web]:
    with ExitStack() as exits:
        w = Web(client, exits)
        try:
            yield w
        finally:
            w.close()


def page(tc: httpx.Client, path: str, status: int = 200) -> Element:
    """GET an HTML page; checks its status, type and security headers."""
    answer = tc.get(path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:500])
    assert answer.headers["content-type"].startswith("text/html"), path
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-frame-options"] == "DENY"
    tree = parse(answer.text)
    # no inline script or style anywhere: the policy would block it, so none is written
    for e in tree.iter():
        assert not (e.tag == "script" and "src" not in e.attrs), path
        assert "style" not in e.attrs and e.tag != "style", path
        assert not any(k.startswith("on") for k in e.attrs), (path, e.tag, e.attrs)
    return tree
