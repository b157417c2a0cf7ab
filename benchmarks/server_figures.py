"""The server's figures, measured against a real ``orchestrator server`` over loopback
HTTP: request times of the run list and the runs grid, and how long a printed log line
takes to reach an SSE client.

Request time is measured by the client around each request (connection kept alive), after
a few warm-up requests, so it is the server's time plus a loopback round trip. A log
line's latency is the client's wall clock when the SSE event holding it arrived, minus
the wall clock the task printed in the line (one machine, one clock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.measure import console
from orchestrator.client import Client
from orchestrator.model.states import TaskState

WARM_UP = 3
REQUESTS = 20
DEEP = 50_000
"""How deep the deep cursor page is: half of the 100,000 runs."""
WALK_PAGE = 500
"""Runs per page while walking down to the deep cursor (the API's largest page)."""
LOG_LINES, LOG_EVERY_S = 50, 0.1
LOG_RUNS = 2
LINE = re.compile(r"bench-line (\d+) (\d+\.\d+)")
START_TIMEOUT_S = 120.0
STREAM_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class Figure:
    figure: str
    variant: str
    samples_ms: list[float]
    target_ms: float | None
    target: str

    def row(self, database: str) -> dict[str, Any]:
        xs = self.samples_ms
        p50, p95 = _percentile(xs, 50), _percentile(xs, 95)
        return {"figure": self.figure, "variant": self.variant, "database": database,
                "samples": len(xs), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2),
                "max_ms": round(max(xs), 2), "target": self.target,
                "met": None if self.target_ms is None else p95 < self.target_ms}


def _percentile(xs: list[float], q: int) -> float:
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


def timed(http: httpx.Client, path: str, params: dict[str, Any] | None = None,
          n: int = REQUESTS) -> tuple[list[float], httpx.Response]:
    """``n`` GETs after the warm-up, in milliseconds each; and the last answer."""
    answer = None
    for _ in range(WARM_UP):
        answer = http.get(path, params=params)
        answer.raise_for_status()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        answer = http.get(path, params=params)
        out.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
    assert answer is not None
    return out, answer


def run_list(http: httpx.Client, filter_dag: str, total: int) -> list[Figure]:
    """GET /api/v1/runs: the newest page, a DAG's newest page, a page half-way down."""
    target = "p95 < 50 ms"
    figures = []
    for variant, params in (("newest 50", {"limit": 50}),
                            (f"dag_id filter, newest 50 ({filter_dag})",
                             {"limit": 50, "dag_id": filter_dag})):
        ms, answer = timed(http, "/api/v1/runs", params)
        _check_page(answer, 50, filter_dag if "dag_id" in params else None)
        figures.append(Figure("GET /api/v1/runs", variant, ms, 50.0, target))
    # Down to the deep cursor a page of 500 at a time: the walk's pages are figures too.
    depth, cursor, walk = 0, None, []
    deep = min(DEEP, total - 50)
    while depth < deep:
        page: dict[str, str | int] = {"limit": min(WALK_PAGE, deep - depth)}
        if cursor:
            page["cursor"] = cursor
        t0 = time.perf_counter()
        answer = http.get("/api/v1/runs", params=page)
        walk.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
        body = answer.json()
        depth += len(body["runs"])
        cursor = body["next_cursor"]
        assert cursor, f"the run list ended after {depth} runs"
    figures.append(Figure("GET /api/v1/runs", f"walk down, pages of {WALK_PAGE}", walk,
                          None, "informational"))
    ms, answer = timed(http, "/api/v1/runs", {"limit": 50, "cursor": cursor})
    _check_page(answer, 50, None)
    figures.append(Figure("GET /api/v1/runs", f"cursor at depth {depth:,}, 50", ms, 50.0,
                          target))
    return figures


def _check_page(answer: httpx.Response, limit: int, dag_id: str | None) -> None:
    runs = answer.json()["runs"]
    assert len(runs) == limit, f"a page of {len(runs)} runs, expected {limit}"
    if dag_id is not None:
        assert {r["dag_id"] for r in runs} == {dag_id}, "the filter let other DAGs through"
    stamps = [dt.datetime.fromisoformat(r["created_at"]) for r in runs]
    assert stamps == sorted(stamps, reverse=True), "not newest first"


def grid(http: httpx.Client, dag_id: str, tasks: int) -> Figure:
    """GET /dags/{dag}/grid?limit=100: the runs grid page (HTML), 100 runs x ``tasks``."""
    ms, answer = timed(http, f"/dags/{dag_id}/grid", {"limit": 100})
    text = answer.text
    rows, cells = text.count("data-run-id="), text.count("data-state=")
    assert rows >= 100, f"the grid shows {rows} runs, expected 100"
    assert cells >= 100 * tasks, f"the grid shows {cells} cells, expected {100 * tasks}"
    return Figure(f"runs grid page, 100 runs x {tasks} tasks", "GET /dags/{dag}/grid",
                  ms, 150.0, "p95 < 150 ms")


def log_latency(client: Client, http: httpx.Client, tmp: Path) -> Figure:
    """Latency from a task's print to the SSE client, over ``LOG_RUNS`` runs of
    ``LOG_LINES`` lines ``LOG_EVERY_S`` apart."""
    samples: list[float] = []
    for _ in range(LOG_RUNS):
        samples += _one_log_run(client, http, tmp / f"gate-{uuid.uuid4().hex}")
    return Figure("log line -> SSE client", f"{LOG_RUNS} x {LOG_LINES} lines, "
                  f"{LOG_EVERY_S:g} s apart", samples, 500.0, "p95 < 500 ms")


def _one_log_run(client: Client, http: httpx.Client, gate: Path) -> list[float]:
    run_id = client.submit("bench_logs", {"gate": str(gate), "lines": LOG_LINES,
                                          "every": LOG_EVERY_S})
    deadline = time.monotonic() + START_TIMEOUT_S
    while client.get_run(run_id).tasks["talk"].state != TaskState.RUNNING:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_logs run {run_id} did not start in "
                               f"{START_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    seen: dict[int, float] = {}
    path = f"/api/v1/runs/{run_id}/tasks/talk/logs/stream"
    with http.stream("GET", path, timeout=STREAM_TIMEOUT_S) as answer:
        answer.raise_for_status()
        gate.touch()  # the client listens: the task may start printing
        ended = False
        for line in answer.iter_lines():
            now = time.time()
            if line.startswith("event: end"):
                ended = True
            elif line.startswith("data:") and not ended:
                for i, printed in LINE.findall(json.loads(line[5:])["data"]):
                    seen.setdefault(int(i), (now - float(printed)) * 1000)
            elif ended and not line:
                break
    client.wait(run_id, timeout=STREAM_TIMEOUT_S)
    if sorted(seen) != list(range(LOG_LINES)):
        missing = sorted(set(range(LOG_LINES)) - set(seen))
        raise RuntimeError(f"the stream of run {run_id} missed lines {missing[:10]}")
    console.print(f"[dim]  log run {run_id[:8]}: {len(seen)} lines, median "
                  f"{statistics.median(seen.values()):.0f} ms[/dim]")
    return [seen[i] for i in range(LOG_LINES)]
