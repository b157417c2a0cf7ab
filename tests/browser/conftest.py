"""Browser tier: the run view in Debian's Chromium, driven by Playwright from PyPI.

One real ``orchestrator server`` per database backend (on the conftest ``stack``, whose
workers run the runs), one headless Chromium per session, a fresh browser context per
test signed in through the login form. Never a downloaded browser: without
/usr/bin/chromium the tier skips, and with CI=true it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.devstack.processes import spawn, terminate
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import FINISHED_RUN
from tests.support import ROOT, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000
"""Bound on every wait for the page (runs on a loaded 2-core machine take seconds)."""

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
FLOWER = "http://127.0.0.1:5555"
"""The Flower address the server links attempts to (nothing needs to listen there)."""

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing (Debian's chromium package; .ci/system-packages)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; in CI the browser tier must run")
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    # Playwright launches Chromium with its sandbox off by default (chromium_sandbox=False),
    # which is what running as root needs; no extra flags. Module scope, not session:
    # while Playwright's sync API is open, an event loop runs in this thread, and the
    # other tiers' asyncio.run() calls would fail after the browser tests.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True)
        yield b
        b.close()


@dataclass(frozen=True)
class Server:
    url: str
    operator_token: str
    viewer_token: str

    def token(self, role: str) -> str:
        return self.operator_token if role == "operator" else self.viewer_token


@pytest.fixture(scope="session")
def session_client(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.settings) as c:
        yield c


def _healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"orchestrator server exited with {proc.returncode}:\n"
                    + log.read_text(errors="replace")[-3000:])
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def server(stack: LocalStack, session_client: Client,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``orchestrator server`` on a free loopback port, with the stack's settings, and
    an operator and a viewer token made through the store."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = spawn(["orchestrator", "server", "--host", "127.0.0.1", "--port", str(port)],
                 stack.settings.with_env(ORCH_FLOWER_URL=FLOWER), log_path=str(log))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url, proc, log), timeout=60, what="the server's /healthz")
        store = session_client.store
        _, operator = store.create_token(f"browser-operator-{port}", "operator")
        _, viewer = store.create_token(f"browser-viewer-{port}", "viewer")
        yield Server(url, operator, viewer)
    finally:
        terminate(proc)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ORCH_TEST_SCREENSHOTS (relative to the repository), else a pytest temp folder;
    docs/screenshots is written only when asked for by that variable."""
    given = os.environ.get("ORCH_TEST_SCREENSHOTS")
    if not given:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(given) if Path(given).is_absolute() else ROOT / given
    path.mkdir(parents=True, exist_ok=True)
    return path


def sign_in(page: Page, token: str) -> None:
    page.goto("/login")
    form = page.locator("form#login")
    form.locator("input[name=token]").fill(token)
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda u: not re.search(r"/login(\?|$)", u))
    assert token not in page.content(), "a page shows the sign-in token"


class Browsing:
    """The test's browser contexts: ``open(role)`` gives a signed-in page; ``shot(page)``
    saves the test's screenshot (taken at teardown of the last page if the test did not)."""

    def __init__(self, browser: Browser, server: Server, folder: Path, name: str) -> None:
        self.browser, self.server, self.folder = browser, server, folder
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        self.shots: list[Path] = []
        self.script_errors: list[str] = []

    def open(self, role: str = "operator", *, viewport: ViewportSize | None = None,
             **options: Any) -> Page:
        ctx = self.browser.new_context(base_url=self.server.url,
                                       viewport=viewport or DESKTOP, **options)
        ctx.set_default_timeout(WAIT_MS)
        self.contexts.append(ctx)
        page = ctx.new_page()
        # Our JavaScript failing would leave a page that looks right and stays stale.
        page.on("pageerror", lambda exc: self.script_errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: self._console(page, msg))
        self.pages.append(page)
        sign_in(page, self.server.token(role))
        return page

    def _console(self, page: Page, msg: ConsoleMessage) -> None:
        # The document's own status (a 422 form page) is the test's business; a script,
        # style or stream failing to load is not.
        own = msg.text.startswith("Failed to load resource") and \
            msg.location.get("url") == page.url
        if msg.type == "error" and not own:
            self.script_errors.append(f"{page.url}: {msg.text}")

    def shot(self, page: Page, suffix: str = "") -> Path:
        path = self.folder / f"{self.name}{suffix}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def close(self) -> None:
        if not self.shots and self.pages:
            with contextlib.suppress(Exception):  # the test's own failure is the report
                self.shot(self.pages[-1])
        for ctx in self.contexts:
            ctx.close()
        assert not self.script_errors, f"errors in the pages' scripts: {self.script_errors}"


@pytest.fixture
def web(browser: Browser, server: Server, screenshot_dir: Path,
        request: pytest.FixtureRequest) -> Iterator[Browsing]:
    b = Browsing(browser, server, screenshot_dir, request.node.name)
    yield b
    b.close()


class Runs:
    """Runs a test makes: ``submit(dag_id, **params)``, or ``track(run_id)`` for one the
    page submitted; at teardown every one still going is cancelled, so a gated task
    never holds a worker slot for the next test."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.made: list[str] = []

    def submit(self, dag_id: str, **params: Any) -> str:
        return self.track(self.client.submit(dag_id, params))

    def track(self, run_id: str) -> str:
        self.made.append(run_id)
        return run_id

    def finish(self) -> None:
        for run_id in self.made:
            if self.client.store.run_state(run_id) not in FINISHED_RUN:
                with contextlib.suppress(errors.Conflict):
                    self.client.cancel(run_id)


@pytest.fixture
def runs(session_client: Client) -> Iterator[Runs]:
    r = Runs(session_client)
    yield r
    r.finish()


def task_state(client: Client, run_id: str, task_id: str) -> str | None:
    task = client.get_run(run_id).tasks.get(task_id)
    return None if task is None else str(task.state)


def wait_task(client: Client, run_id: str, task_id: str, state: str) -> None:
    wait_until(lambda: task_state(client, run_id, task_id) == state, timeout=WAIT_MS / 1000,
               what=f"task {task_id} of run {run_id} to be {state}")
