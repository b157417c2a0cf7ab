"""``python dags/etl_demo.py`` (``make etl``): run the ``orders_etl`` DAG end to end on a
throwaway local stack, as ``make run`` does the quick-start DAG, against a fixture orders
API this script serves on 127.0.0.1 (its first answer is a 503, so the run shows the
extract task retried).

``orders_api`` points at the fixture; ``warehouse`` is ``ORCH_CONN_WAREHOUSE`` when set,
else the SQLite file ``warehouse.db`` here. Defines no DAG: the DAG folder may load it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ORDERS = [
    {"id": 1001, "customer": " Ada ", "amount": "12.50", "status": "paid"},
    {"id": 1002, "customer": "Grace", "amount": "99.99", "status": "paid"},
    {"id": 1003, "customer": "Linus", "amount": "5.00", "status": "cancelled"},
    {"id": 1004, "customer": "Barbara", "amount": "42.00", "status": "paid"},
]


class FixtureApi(ThreadingHTTPServer):
    """``GET /orders?day=YYYY-MM-DD``: the day's orders; the very first request gets a
    503, as a flaky real API would."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FixtureApi:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FixtureApi

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
            first = self.server.requests == 1
        parts = urlsplit(self.path)
        if parts.path != "/orders":
            return self._send(404, {"error": "no such resource"})
        if first:
            return self._send(503, {"error": "warming up, try again"})
        day = parse_qs(parts.query).get("day", [""])[0]
        self._send(200, {"day": day, "orders": [{**o, "id": f"{day}-{o['id']}"}
                                                for o in ORDERS]})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the run's own log tells what happened


def main(argv: list[str]) -> int:
    import typer

    from orchestrator.cli.services import quickstart_cmd

    day = argv[0] if argv else "2026-12-01"
    os.environ.setdefault("ORCH_CONN_WAREHOUSE",
                          f"sqlite:///{Path('warehouse.db').resolve()}")
    with FixtureApi() as api:
        os.environ["ORCH_CONN_ORDERS_API"] = api.url  # the workers inherit it
        try:
            quickstart_cmd("orders_etl", param=[f"day={day}"])
        except typer.Exit as exc:
            return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
