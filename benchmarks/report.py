"""The benchmark's report: rows with ratios and targets, the console table, the README's
Markdown."""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

from rich.table import Table

from benchmarks.measure import Sample, Workload, console


def _median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def machine() -> str:
    return (f"{platform.system()} {platform.release()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def build_rows(workloads: list[Workload], orch: dict[str, list[Sample]],
               raw: dict[str, list[Sample]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for w in workloads:
        o, c = orch.get(w.name, []), raw.get(w.name, [])
        o_s = _median([s.wall_s for s in o])
        c_s = _median([s.wall_s for s in c]) if c else None
        ratio = o_s / c_s if o_s is not None and c_s else None
        row: dict[str, Any] = {
            "workload": w.name, "tasks": w.tasks,
            "orchestrator_s": _r(o_s), "celery_s": _r(c_s), "ratio": _r(ratio, 3),
            "target": w.target,
        }
        if w.name == "chain":
            row["per_hop_ms"] = _r(o_s * 1000 / w.tasks, 3) if o_s else None
            row["celery_per_hop_ms"] = _r(c_s * 1000 / w.tasks, 3) if c_s else None
        if w.name == "dag10k":
            row["submit_s"] = _r(_median([s.submit_s for s in o]))
            row["submit_first_s"] = _r(o[0].submit_s) if o else None
        else:
            row["submit_s"] = _r(_median([s.submit_s for s in o]))
        row["orchestrator_tasks_per_s"] = round(w.tasks / o_s, 1) if o_s else None
        row["celery_tasks_per_s"] = round(w.tasks / c_s, 1) if c_s else None
        for side, samples in (("orchestrator", o), ("celery", c)):
            wc = _median([s.worker_cpu_s for s in samples])
            bc = _median([s.broker_cpu_s for s in samples])
            cc = _median([s.client_cpu_s for s in samples])
            row[f"{side}_worker_cpu_ms_per_task"] = _r(wc * 1000 / w.tasks, 3) if wc else None
            row[f"{side}_broker_cpu_ms_per_task"] = _r(bc * 1000 / w.tasks, 3) if bc else None
            row[f"{side}_client_cpu_s"] = _r(cc)
        row["orchestrator_runs"], row["celery_runs"] = len(o), len(c)
        row["orchestrator_samples_s"] = [_r(s.wall_s) for s in o]
        row["celery_samples_s"] = [_r(s.wall_s) for s in c]
        row["met"] = _met(w, row)
        row.update(meta)
        rows.append(row)
    return rows


def _met(w: Workload, row: dict[str, Any]) -> bool | None:
    if w.name == "dag10k":
        return row["submit_s"] is not None and row["submit_s"] < 1.0
    ok = None
    if w.target_ratio is not None and row["ratio"] is not None:
        ok = row["ratio"] <= w.target_ratio
    if w.name == "chain" and row.get("per_hop_ms") is not None:
        ok = (ok is not False) and row["per_hop_ms"] <= 3.0
    return ok


def _fmt(x: float | None, unit: str = "", nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}{unit}"


def _notes(row: dict[str, Any]) -> str:
    parts = []
    if row["workload"] == "chain" and row.get("per_hop_ms") is not None:
        parts.append(f"{row['per_hop_ms']:.2f} ms/hop (raw "
                     f"{_fmt(row.get('celery_per_hop_ms'), '', 2)})")
    if row["workload"] == "dag10k":
        parts.append(f"submit {_fmt(row['submit_s'], ' s')}")
        if row["orchestrator_runs"] < row["repeat"]:
            parts.append(f"{row['orchestrator_runs']} run(s), time-boxed")
    if row.get("orchestrator_tasks_per_s"):
        parts.append(f"{row['orchestrator_tasks_per_s']:.0f} tasks/s")
    cpu = row.get("orchestrator_worker_cpu_ms_per_task")
    if cpu is not None:
        raw_cpu = row.get("celery_worker_cpu_ms_per_task")
        parts.append(f"worker CPU {cpu:.2f} ms/task"
                     + (f" (raw {raw_cpu:.2f})" if raw_cpu is not None else ""))
    return "; ".join(parts)


def _met_str(m: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[m]


def print_table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="orchestrator vs raw Celery (median)")
    for col, just in (("workload", "left"), ("tasks", "right"), ("orchestrator", "right"),
                      ("raw Celery", "right"), ("ratio", "right"), ("target", "left"),
                      ("met", "center"), ("notes", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r["workload"], str(r["tasks"]), _fmt(r["orchestrator_s"], " s"),
                  _fmt(r["celery_s"], " s"), _fmt(r["ratio"], "x", 2), r["target"],
                  _met_str(r["met"]), _notes(r))
    console.print(t)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "| workload | tasks | orchestrator | raw Celery | ratio | target | met | notes |",
        "|---|--:|--:|--:|--:|---|:-:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['tasks']} | {_fmt(r['orchestrator_s'], ' s')} | "
                     f"{_fmt(r['celery_s'], ' s')} | {_fmt(r['ratio'], 'x', 2)} | "
                     f"{r['target']} | {_met_str(r['met'])} | {_notes(r)} |")
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}; broker: {meta['broker']}; "
        f"state database: {meta['database']}. Median of {meta['repeat']} runs per side, the "
        f"sides taking {meta.get('rounds', 1)} turns each (a fresh worker and one warm-up pass "
        "per turn; dag10k: as many runs as fit in 200 s, in the last turn); 1 worker, "
        "prefork, concurrency 2 on each side, never both at once. "
        "Time is submit until the result is known (orchestrator: `Client.wait` returned; "
        "raw Celery: `AsyncResult.get(interval=0.005)` on the final task's result, without the "
        "parent links that make the client re-read every parent on each wake-up). "
        "Raw Celery uses the Redis result "
        "backend (chords need it) and the same delivery settings (acks_late, prefetch 1, "
        "JSON); task events are off on both sides (Flower turns them on when it watches). "
        "Lattice: 10x10 full joins "
        "plus one sink, raw as nested chords. Worker CPU is user+system time of the whole "
        "worker process group per task. Reproduce with `make bench`.",
    ]
    return "\n".join(lines) + "\n"




# -- the server's figures (benchmarks/server.py) ---------------------------------------


def print_server_table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="the server: request and log latency, ms (client-side, loopback)")
    for col, just in (("figure", "left"), ("variant", "left"), ("database", "left"),
                      ("p50", "right"), ("p95", "right"), ("n", "right"),
                      ("target", "left"), ("met", "center")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r["figure"], r["variant"], r["database"], _fmt(r["p50_ms"], "", 1),
                  _fmt(r["p95_ms"], "", 1), str(r["samples"]), r["target"],
                  _met_str(r["met"]))
    console.print(t)


def server_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["| figure | variant | database | p50 | p95 | samples | target | met |",
             "|---|---|---|--:|--:|--:|---|:-:|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['variant']} | {r['database']} | "
                     f"{_fmt(r['p50_ms'], ' ms', 1)} | {_fmt(r['p95_ms'], ' ms', 1)} | "
                     f"{r['samples']} | {r['target']} | {_met_str(r['met'])} |")
    seeded = "; ".join(f"{db}: {s['runs']:,} runs, {s['task_rows']:,} task rows, seeded in "
                       f"{s['seed_s']:.0f} s" for db, s in meta["seeded"].items())
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}; databases: "
        f"{', '.join(meta['backends']) or 'none'} ({seeded}). Each database is fresh, "
        "seeded with finished runs through the store in bulk (1,000 runs of a 200-task DAG "
        "for the grid, the rest spread over ten two-task DAGs, creation times interleaved), "
        "and served by a real `orchestrator server` process of its own with one worker "
        "beside it. Request times are taken by the client around each request over "
        "loopback (keep-alive, after 3 warm-up requests): the server's time plus a round "
        "trip. The deep page follows the cursor of a walk down the list, 500 runs a page. "
        "Log latency: a task prints a line with its wall clock every 0.1 s; an SSE client "
        "on the attempt's log stream takes its own wall clock when the event with the line "
        "arrives (same machine). Reproduce with `python -m benchmarks.server` (part of "
        "`make bench`).",
    ]
    return "\n".join(lines) + "\n"


# -- the features' figures (benchmarks/features.py) ------------------------------------


def print_features_table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="features: latencies from the database rows, ms")
    for col, just in (("figure", "left"), ("p50", "right"), ("p95", "right"),
                      ("max", "right"), ("n", "right"), ("target", "left"),
                      ("met", "center"), ("notes", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r["figure"], _fmt(r["p50_ms"], "", 1), _fmt(r["p95_ms"], "", 1),
                  _fmt(r["max_ms"], "", 1), str(r["samples"]), r["target"],
                  _met_str(r["met"]), r["notes"])
    console.print(t)


def features_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["| figure | measured as | p50 | p95 | max | samples | target | met | notes |",
             "|---|---|--:|--:|--:|--:|---|:-:|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['variant']} | {_fmt(r['p50_ms'], ' ms', 1)} | "
                     f"{_fmt(r['p95_ms'], ' ms', 1)} | {_fmt(r['max_ms'], ' ms', 1)} | "
                     f"{r['samples']} | {r['target']} | {_met_str(r['met'])} | "
                     f"{r['notes']} |")
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}; broker: {meta['broker']}; state "
        f"database: {meta['database']}, the hot path's, after its turns. A stack of its own: "
        "1 worker (prefork, concurrency 2) and 3 `orchestrator coordinator`s (scheduler pass "
        f"every {meta['schedule_interval_s']:g} s), which registers `benchmarks/dags`. Every "
        "figure but the last is a difference of timestamps in the rows the runs left, each "
        "written by the transaction that made the change. Slot hand-off: a pool of 1 slot, "
        f"{meta['pool_runs']} runs of 20 independent tasks after a warm-up run. Schedule "
        f"delay: a one-second cron unpaused for {meta['ticks']} ticks (after the first, "
        "which fires the tick missed while paused), then paused again. Asset latency: "
        f"{meta['asset_runs']} producer runs one after another, after a warm-up run. "
        "Backfill accept is a wall time instead: `Client.backfill` over a year of hourly "
        f"logical times, {meta.get('backfills', 0)} times. "
        "Reproduce with `make bench` (`python -m benchmarks.run --only "
        "slots,schedule,assets,backfill` for these alone).",
    ]
    return "\n".join(lines) + "\n"
