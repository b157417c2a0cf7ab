"""The alert latency figure, part of ``make bench``'s features: from the commit that
fails a run to its webhook arriving at a receiver on 127.0.0.1.

``bench_alert`` fails ``ALERT_RUNS`` times, one run at a time, with one coordinator on
its default interval. The start is the notification row's ``created_at`` (the failing
transaction's clock); the end is when the receiver, in this process, read the request.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

if TYPE_CHECKING:
    from orchestrator.client import Client

DAG, ALERT_RUNS, URL_VARIABLE = "bench_alert", 20, "BENCH_ALERT_URL"
WAIT_S = 60.0


class _Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.arrived.setdefault(self.headers["X-Orchestrator-Event-Id"], at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alert"


@contextmanager
def receiver() -> Iterator[_Receiver]:
    """The receiver, its URL in the environment the coordinator is started with."""
    r = _Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    old = os.environ.get(URL_VARIABLE)
    os.environ[URL_VARIABLE] = r.url
    try:
        yield r
    finally:
        if old is None:
            os.environ.pop(URL_VARIABLE, None)
        else:
            os.environ[URL_VARIABLE] = old
        r.server.shutdown()
        r.server.server_close()


def latency(client: Client, conn_of: Callable[[], Connection], r: _Receiver,
            wait_until: Callable[[str, Callable[[], bool]], None]) -> list[float]:
    """Seconds from each failing commit to its alert's arrival (after one warm-up run)."""
    from orchestrator.store.tables import notifications

    samples: list[float] = []
    for i in range(ALERT_RUNS + 1):
        run_id = client.submit(DAG)
        client.wait(run_id, timeout=WAIT_S)

        def row(run_id: str = run_id) -> Any:
            with conn_of() as conn:
                return conn.execute(select(notifications.c.id, notifications.c.created_at)
                                    .where(notifications.c.run_id == run_id)).first()

        wait_until(f"the alert of {DAG} run {run_id}",
                   lambda: (found := row()) is not None and found.id in r.arrived)
        found = row()
        if i:  # the first warms the notifier's connections up
            created: dt.datetime = found.created_at
            samples.append(r.arrived[found.id] - created.timestamp())
    return samples
