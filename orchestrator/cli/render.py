"""How the CLI shows things: tables, the progress bar, JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.model import records, sealed
from orchestrator.model.compiled import SHORT
from orchestrator.model.states import FINISHED_TASK, TaskState
from orchestrator.observability import masking

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

STYLE = {"success": "green", "failed": "red", "upstream_failed": "yellow", "running": "cyan",
         "cancelled": "magenta"}


def dump(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def styled(state: str) -> str:
    return f"[{STYLE.get(state, 'white')}]{state}[/]"


def short(version: str | None) -> str:
    return version[:SHORT] if version else "-"


def with_progress(wait: Callable[..., records.Run], run_id: str, timeout: float | None,
                  quiet: bool = False) -> records.Run:
    """Call ``wait(run_id, timeout, on_progress=...)`` under a progress bar on a terminal."""
    if quiet or not err.is_terminal:
        return wait(run_id, timeout)
    with Progress(TextColumn("run {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        handle = bar.add_task(run_id[:12], total=None)

        def update(counts: dict[TaskState, int], total: int) -> None:
            done = sum(n for s, n in counts.items() if s in FINISHED_TASK)
            bar.update(handle, completed=done, total=total)

        return wait(run_id, timeout, on_progress=update)


def masked(r: records.Run) -> records.Run:
    """The run as the CLI shows it: secret params as ``***``, and results, errors and
    tracebacks masked (workers masked them already; this adds the CLI's own secrets)."""
    masker = masking.process_masker()
    m = masker.mask

    def text(value: str | None) -> str | None:
        return None if value is None else m(value)

    tasks = {}
    for task_id, ti in r.tasks.items():
        attempts = [a.model_copy(update={"error_message": text(a.error_message),
                                         "traceback": text(a.traceback)}) for a in ti.attempts]
        tasks[task_id] = ti.model_copy(update={"error": text(ti.error), "attempts": attempts,
                                               "result": masker.mask_value(ti.result)})
    return r.model_copy(update={"tasks": tasks,
                                "params": masker.mask_value(sealed.shown(r.params))})


def run(r: records.Run, as_json: bool) -> None:
    r = masked(r)
    if as_json:
        dump(r.model_dump(mode="json"))
        return
    out.print(f"run [bold]{r.id}[/bold]  dag {r.dag_id}  version {short(r.dag_version)}  "
              f"{styled(r.state)}")
    started = f"trigger {r.trigger}"
    if r.logical_time is not None:
        started += f"  logical time {r.logical_time.isoformat()}"
    if r.interval_start is not None and r.interval_end is not None:
        started += (f"  interval [{r.interval_start.isoformat()}, "
                    f"{r.interval_end.isoformat()})")
    out.print(started, highlight=False)
    table = Table("task", "state", "attempts", "duration", "worker", "result / error")
    never = dt.datetime.max.replace(tzinfo=dt.UTC)

    # In the order they ran (tasks that never started last), as a reader follows a run;
    # a mapped task's instances right after it, in item order.
    def order(t: records.TaskInstance) -> tuple[dt.datetime, str, int]:
        head = r.tasks.get(t.map_parent or t.task_id, t)
        return head.started_at or never, head.task_id, -1 if t.map_index is None else t.map_index

    for t in sorted(r.tasks.values(), key=order):
        detail = t.error if t.error else json.dumps(t.result, default=str)
        dur = f"{t.duration_s:.3f}s" if t.duration_s is not None else ""
        table.add_row(t.task_id, styled(t.state), str(len(t.attempts)), dur, t.worker or "",
                      (detail or "")[:80])
    out.print(table)
    other = sorted({a.dag_version for t in r.tasks.values() for a in t.attempts
                    if a.dag_version and a.dag_version != r.dag_version})
    if other:
        out.print(f"[yellow]note[/yellow]: some attempts ran on workers that had another "
                  f"version of the DAG loaded: {', '.join(short(v) for v in other)}")


def runs(found: list[records.Run]) -> None:
    """Runs by a short id: any unique prefix names a run (`runs show 3f9c2a1b`)."""
    table = Table("run", "dag", "state", "tasks", "created", "finished", "version")
    for column in (table.columns[0], table.columns[-1]):  # ids are never cut
        column.no_wrap, column.min_width = True, SHORT
    for r in found:
        table.add_row(r.id[:SHORT], r.dag_id, styled(r.state), str(r.total_tasks),
                      f"{r.created_at:%m-%d %H:%M:%S}",
                      f"{r.finished_at:%H:%M:%S}" if r.finished_at else "", short(r.dag_version))
    out.print(table)
