"""The server benchmark's database: 100,000 finished runs, written in bulk through the
store (``orchestrator.store.seed``), never submitted one by one.

1,000 of them are runs of ``bench_grid`` (200 tasks each: the grid's 100 runs x 200 tasks
and nine more pages of it); the others belong to ten two-task DAGs. Their creation times
interleave (a grid run every 100 s, the small DAGs' runs in between), so a filter by DAG
skips other DAGs' runs as it would in a real database. One run in ten of the grid and one
in seven of the others failed halfway. On PostgreSQL the planner's statistics are
gathered afterwards, as autovacuum would soon after such a load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

from orchestrator.authoring import discovery
from orchestrator.store import Store
from orchestrator.store import seed as seed_

DAGS_DIR = Path(__file__).resolve().parent / "server_dags"
GRID_DAG = "bench_grid"
GRID_RUNS = 1000
SMALL_DAGS = [f"bench_small_{i}" for i in range(10)]
FILTER_DAG = SMALL_DAGS[3]
"""The DAG the filtered run list asks for: a tenth of the runs."""
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Seeded:
    runs: int
    task_rows: int
    seconds: float
    grid_runs: int
    filter_runs: int


def seed(database_url: str, total_runs: int = 100_000) -> Seeded:
    """Bring the schema to head and write ``total_runs`` finished runs."""
    bag = discovery.load(DAGS_DIR)
    grid = min(GRID_RUNS, total_runs)
    per_small, extra = divmod(total_runs - grid, len(SMALL_DAGS))
    store = Store(database_url)
    t0 = time.perf_counter()
    try:
        store.upgrade()
        rows = seed_.finished_runs(store, bag.get(GRID_DAG), grid,
                                   seed_.Spread(START, every=dt.timedelta(seconds=100)),
                                   failed_every=10)
        counts = {}
        for i, dag_id in enumerate(SMALL_DAGS):
            n = per_small + (1 if i < extra else 0)
            counts[dag_id] = n
            # 10 s apart, each DAG a fraction of a second after the one before it: no two
            # runs share a creation time, and none falls on a grid run's
            spread = seed_.Spread(START, every=dt.timedelta(seconds=10),
                                  offset=dt.timedelta(seconds=0.09 * (i + 1)))
            rows += seed_.finished_runs(store, bag.get(dag_id), n, spread, failed_every=7)
        seed_.analyze(store)
    finally:
        store.dispose()
    return Seeded(runs=grid + sum(counts.values()), task_rows=rows,
                  seconds=time.perf_counter() - t0, grid_runs=grid,
                  filter_runs=counts[FILTER_DAG])
