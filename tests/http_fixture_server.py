"""A real HTTP server on 127.0.0.1 for http task tests: routes by path, each answering
with a Reply (or a behaviour: hold the request, stream without end), recording every
request it was sent. Started and stopped by the test (``with FixtureServer() as s``)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as the server read it (header names in lower case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, value: Any, status: int = 200, content_type: str = "application/json",
             ) -> Reply:
        return cls(status, json.dumps(value).encode(), content_type)

    @classmethod
    def text(cls, value: str, status: int = 200,
             content_type: str = "text/plain; charset=utf-8") -> Reply:
        charset = content_type.partition("charset=")[2] or "utf-8"
        return cls(status, value.encode(charset), content_type)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, headers=(("Location", location),))


Writer = Callable[[BaseHTTPRequestHandler, "FixtureServer"], None]
"""A behaviour instead of a reply: writes to the client socket itself."""
Route = Callable[[Seen, int], "Reply | Writer"]
"""Called with the request and how many requests of the same route and ``key`` query
value came before it (0 for the first): a script per run of a test DAG."""


def hold(handler: BaseHTTPRequestHandler, server: FixtureServer) -> None:
    """Never answer: the request is held until the server stops."""
    server.released.wait(300)


def endless(declared: int | None = None, chunk: int = 64 * 1024) -> Writer:
    """A 200 that never ends (``declared``: the Content-Length it claims); the bytes it
    managed to write are counted in ``server.streamed`` until the client hangs up, then
    ``server.streams_ended`` counts it."""

    def write(handler: BaseHTTPRequestHandler, server: FixtureServer) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        if declared is not None:
            handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        block = b"x" * chunk
        while not server.released.is_set():
            try:
                handler.wfile.write(block)
                handler.wfile.flush()
            except OSError:  # the client stopped reading and closed: what we want
                break
            with server.lock:
                server.streamed += len(block)
        with server.lock:
            server.streams_ended += 1
        handler.close_connection = True

    return write


class FixtureServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.streamed = 0
        self.streams_ended = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._counts: dict[tuple[str, str], int] = {}
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                seen = fixture._read(self)
                route = fixture.routes.get(seen.path)
                with fixture.lock:
                    fixture.seen.append(seen)
                    key = (seen.path, seen.query.get("key", [""])[0])
                    n = fixture._counts.get(key, 0)
                    fixture._counts[key] = n + 1
                answer = route(seen, n) if route else Reply.text("no such route", 404)
                if isinstance(answer, Reply):
                    fixture._write(self, answer)
                else:
                    answer(self, fixture)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle
            do_HEAD = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def _read(handler: BaseHTTPRequestHandler) -> Seen:
        length = int(handler.headers.get("Content-Length", "0") or "0")
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        return Seen(handler.command, parts.path, parse_qs(parts.query),
                    {k.lower(): v for k, v in handler.headers.items()}, body)

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        if reply.content_type:
            handler.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body)

    def route(self, path: str, answer: Reply | Writer) -> None:
        """Every request to ``path`` gets ``answer``."""
        self.routes[path] = lambda seen, n: answer

    def script(self, path: str, answer: Route) -> None:
        """A request to ``path`` gets what ``answer(request, n)`` says."""
        self.routes[path] = answer

    def requests(self, path: str | None = None, key: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if (path is None or s.path == path)
                    and (key is None or s.query.get("key") == [key])]

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
