"""Real receivers on 127.0.0.1 for alert tests: an HTTP server that records what it is
sent (answering with the statuses it is told to, or not at all), and aiosmtpd."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """``answers``: statuses for the first requests, in order (then 200); ``hang``:
    never answer (the request is recorded, then held until the server stops);
    ``hang_first``: hold only the first that many requests, answer the rest."""

    def __init__(self, answers: list[int] | None = None, *, hang: bool = False,
                 hang_first: int = 0) -> None:
        self.got: list[Received] = []
        self.answers = list(answers or [])
        self.hang = hang
        self.hang_first = hang_first
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.got.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    held = receiver.hang or len(receiver.got) <= receiver.hang_first
                if held:
                    receiver._release.wait(120)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def of_run(self, run_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.got if _run_of(r) == run_id]


def _run_of(r: Received) -> str | None:
    try:
        data = r.json
    except ValueError:
        return None
    if "run_id" in data:
        return str(data["run_id"])
    text = str(data.get("text", ""))
    return next((w.strip("()." ) for w in text.split() if len(w.strip("().")) == 32), None)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)
        return "250 OK"

    def of_run(self, run_id: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if run_id in str(m["Subject"])]


@contextmanager
def smtp_server() -> Iterator[tuple[str, _Mailbox]]:
    """aiosmtpd on a free loopback port: (its smtp:// URL, the messages it took)."""
    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", box
    finally:
        controller.stop()
