"""``orchestrator alerts listen``: a local webhook receiver that prints each alert.

Point a webhook rule at it (``url: http://127.0.0.1:8765/``) to see what an alert says
and whether its X-Orchestrator-Signature verifies. The secret is read from the
environment variable ``--secret-env`` names, never from the command line (``ps`` shows
argv to every local user). It answers 200 to every alert it can read, verified or not
(it is a viewer, not a gate: a refusal would make the coordinator try again or give up),
and 400 to a body that is not a JSON object. It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer

from orchestrator import errors
from orchestrator.coordinator.channels import EVENT_ID, SIGNATURE

MAX_BODY = 1024 * 1024
"""Bytes of a body it reads (an alert is a few hundred); a bigger one gets 413."""
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)


def verdict(body: bytes, header: str | None, secret: bytes | None) -> str:
    """What the signature says: verified, does NOT verify, missing, or not checked."""
    if secret is None:
        return "not checked (no --secret-env)" if header is None else \
            "not checked (no --secret-env given to check it with)"
    if header is None:
        return f"MISSING: the request has no {SIGNATURE} header"
    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(want.encode(), header.encode("utf-8", "replace")):
        return "verified (HMAC-SHA256 with the secret)"
    return "DOES NOT VERIFY with the secret: not sent by a sender that has it, or altered"


def _clean(value: Any, width: int = 500) -> str:
    """Text safe to print on a terminal: control characters (escape sequences a forged
    alert could carry) shown escaped, long values cut."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= width else out[:width - 1] + "…"


def describe(alert: dict[str, Any], event_id: str | None, check: str, again: bool) -> str:
    """The lines printed for one alert."""
    get = alert.get
    head = f"alert {_clean(get('event', '?'))}  dag {_clean(get('dag_id', '?'))}  " \
           f"run {_clean(get('run_id', '?'))}"
    if get("task_id"):
        head += f"  task {_clean(get('task_id'))}"
        if get("attempt"):
            head += f" (attempt {_clean(get('attempt'))})"
    lines = [head]
    if get("error"):
        lines.append(f"  error: {_clean(get('error'))}")
    if get("url"):
        lines.append(f"  run page: {_clean(get('url'))}")
    lines.append(f"  event id: {_clean(event_id) if event_id else '(no ' + EVENT_ID + ')'}"
                 + ("  (seen before: a redelivery; dedupe on this id)" if again else ""))
    lines.append(f"  signature: {check}")
    return "\n".join(lines)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    secret: bytes | None = None
    seen: set[str]
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "orchestrator-alerts-listen"
    sys_version = ""

    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, "a Content-Length is required")
            return
        if not 0 <= length <= MAX_BODY:
            self._answer(413, f"at most {MAX_BODY} bytes")
            return
        body = self.rfile.read(length)
        try:
            alert = json.loads(body)
        except (ValueError, RecursionError):
            alert = None
        if not isinstance(alert, dict):
            _say(f"refused a POST to {_clean(self.path, 200)}: its body is not a JSON "
                 "object (not an alert)")
            self._answer(400, "not an alert: the body is not a JSON object")
            return
        event_id = self.headers.get(EVENT_ID)
        with self.server.lock:
            again = event_id is not None and event_id in self.server.seen
            if event_id is not None:
                self.server.seen.add(event_id)
            check = verdict(body, self.headers.get(SIGNATURE), self.server.secret)
            _say(describe(alert, event_id, check, again))
        self._answer(200, "ok")

    def do_GET(self) -> None:
        self._answer(200, "orchestrator alerts listen: POST alerts here")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each alert is printed by do_POST; the access log would only repeat it


def _say(text: str) -> None:
    # flushed per alert: the output is often a pipe (a test, `| tee`), read as it comes
    print(text, flush=True)


def _secret(name: str | None) -> bytes | None:
    if name is None:
        return None
    if not name or not set(name) <= _NAME_CHARS or name[0].isdigit():
        raise typer.BadParameter(f"{name[:60]!r} is not an environment variable name "
                                 "(letters, digits and _; not starting with a digit)",
                                 param_hint="--secret-env")
    value = os.environ.get(name)
    if not value:
        raise errors.InvalidArgument(
            f"--secret-env {name}: the environment variable {name} is not set (or empty); "
            f"export it with the webhook rule's secret, e.g. `read -s {name}; export {name}`")
    return value.encode()


def listen(port: Annotated[int, typer.Option(
               min=0, max=65535, help="The port (0: any free one, printed).")] = 8765,
           host: Annotated[str, typer.Option(
               help="The address to bind; anything but loopback lets other machines "
                    "post to it.")] = "127.0.0.1",
           secret_env: Annotated[str | None, typer.Option(
               "--secret-env", metavar="NAME",
               help="Verify signatures with the secret in environment variable NAME "
                    "(never given on the command line).")] = None) -> None:
    """Receive alerts on http://HOST:PORT/ and print each (event, DAG, run, task, error,
    event id) and whether its signature verifies; answers 200. Ctrl-C stops it."""
    secret = _secret(secret_env)
    try:
        server = _Server((host, port), _Handler)
    except OSError as exc:
        raise errors.InvalidArgument(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                     + ("; choose another with --port" if port else "")
                                     ) from None
    server.secret, server.seen, server.lock = secret, set(), threading.Lock()
    bound = server.server_address[1]
    where = f"[{host}]" if ":" in host else host
    print(f"listening on http://{where}:{bound}/ for alerts"
          + (f", checking signatures with ${secret_env}" if secret_env else
             ", not checking signatures (no --secret-env)") + "; Ctrl-C stops",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("stopped", file=sys.stderr, flush=True)
