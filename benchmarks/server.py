"""``python -m benchmarks.server``: the server's figures, on SQLite and on PostgreSQL.

For each database: a fresh one (a SQLite file in a temporary folder; a PostgreSQL database
of its own, created on the server ``ORCH_BENCH_POSTGRES_URL`` names, else
``ORCH_TEST_POSTGRES_URL``, else postgresql://postgres@127.0.0.1:5432/test, and dropped
afterwards), 100,000 finished runs seeded into it (``benchmarks/seed.py``), then a local
stack of its own (embedded broker, one worker, a real ``orchestrator server`` process)
and a viewer token. Measured there (``benchmarks/server_figures.py``): the run list with
and without a DAG filter and half-way down by cursor, the runs grid page, and the
latency of log lines to an SSE client. Nothing is reused between databases or runs.

``make bench`` runs this after the hot path, so that it never competes with it. Writes
``benchmarks/results/server.json`` and ``server.md`` (the README's server table).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks import seed, server_figures
from benchmarks.measure import console, tail
from benchmarks.report import machine, print_server_table, server_markdown

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
BACKENDS = ("sqlite", "postgres")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_admin() -> str | None:
    """The PostgreSQL server to make the benchmark's database on, if one answers."""
    from orchestrator.store import Store

    url = (os.environ.get("ORCH_BENCH_POSTGRES_URL") or os.environ.get("ORCH_TEST_POSTGRES_URL")
           or PG_DEFAULT)
    store = Store(url)
    try:
        store.ping()
    except Exception as exc:
        console.print(f"[yellow]PostgreSQL at {store.engine.url!r} does not answer "
                      f"({store.describe(exc)}): its figures are skipped[/yellow]")
        return None
    finally:
        store.dispose()
    return url


@contextlib.contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str | None]:
    from orchestrator.store import seed as store_seed

    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'server-bench.db'}"
        return
    admin = _postgres_admin()
    if admin is None:
        yield None
        return
    with store_seed.scratch_postgres(admin, prefix="orch_bench") as url:
        yield url


def measure_backend(backend: str, url: str, total_runs: int,
                    tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from orchestrator.client import Client
    from orchestrator.devstack.server import address
    from orchestrator.devstack.stack import LocalStack
    from orchestrator.settings import Settings

    console.print(f"[bold]server figures on {backend}[/bold]: seeding {total_runs:,} runs")
    seeded = seed.seed(url, total_runs)
    console.print(f"[dim]  seeded {seeded.runs:,} runs, {seeded.task_rows:,} task rows in "
                  f"{seeded.seconds:.1f} s[/dim]")
    settings = Settings.from_env({
        "ORCH_DATABASE_URL": url, "ORCH_DAGS_PATH": str(seed.DAGS_DIR),
        "ORCH_SERVER_PORT": str(_free_port()), "ORCH_SERVER_HOST": "127.0.0.1",
        "ORCH_DEFAULT_QUEUE": f"bench-server-{uuid.uuid4().hex[:8]}"})
    logs = tmp / f"logs-{backend}"
    logs.mkdir()
    figures: list[server_figures.Figure] = []
    try:
        with LocalStack(settings, workers=1, concurrency=1, server=True,
                        log_dir=str(logs)) as stack, Client(stack.settings) as client:
            _, token = client.store.create_token(f"bench-{uuid.uuid4().hex[:8]}", "viewer")
            with httpx.Client(base_url=address(stack.settings), timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                figures += server_figures.run_list(http, seed.FILTER_DAG, seeded.runs)
                grid_tasks = len(client.dag(seed.GRID_DAG).plan.upstream)
                figures.append(server_figures.grid(http, seed.GRID_DAG, grid_tasks))
                figures.append(server_figures.log_latency(client, http, tmp))
    except BaseException:
        for f in sorted(logs.glob("*.log")):
            console.print(f"[red]--- {f.name} (tail)[/red]\n{tail(f)}")
        raise
    rows = [f.row(backend) for f in figures]
    return rows, {"runs": seeded.runs, "task_rows": seeded.task_rows,
                  "seed_s": round(seeded.seconds, 1), "grid_runs": seeded.grid_runs,
                  "filter_runs": seeded.filter_runs}


def run(backends: tuple[str, ...] = BACKENDS, total_runs: int = 100_000,
        out: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Measure on each database, print the table, write server.json and server.md."""
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    seeded: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="orch-server-bench-") as tmp:
        for backend in backends:
            with _database(backend, Path(tmp)) as url:
                if url is None:
                    continue
                more, seeded[backend] = measure_backend(backend, url, total_runs, Path(tmp))
                rows += more
    meta = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(), "cpu_count": os.cpu_count(), "seeded": seeded,
            "backends": [b for b in backends if b in seeded]}
    print_server_table(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "server.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "server.md").write_text(server_markdown(rows, meta))
    console.print(f"wrote {out / 'server.json'} and server.md "
                  f"in {time.perf_counter() - started:.0f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=",".join(BACKENDS),
                    help="comma-separated: sqlite, postgres")
    ap.add_argument("--runs", type=int, default=100_000, help="runs seeded in the database")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    backends = tuple(b for b in args.backends.split(",") if b)
    unknown = set(backends) - set(BACKENDS)
    if unknown or not backends:
        ap.error(f"unknown backends {sorted(unknown)}; known: {list(BACKENDS)}")
    if args.runs < 2000:
        ap.error("--runs must be at least 2000 (the grid's 1,000 runs, and a page of 50 "
                 "runs for each small DAG)")
    run(backends, args.runs, args.out)
    return 0


if __name__ == "__main__":
    from orchestrator.devstack.processes import exit_on_sigterm

    signal.signal(signal.SIGTERM, exit_on_sigterm)  # so every `with` stops what it started
    sys.exit(main())
