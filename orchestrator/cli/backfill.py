"""``orchestrator backfill DAG --start --end`` and ``orchestrator backfills list|show|cancel``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import render
from orchestrator.cli.common import JsonOpt, an_id, client
from orchestrator.model import backfill as backfill_
from orchestrator.model import records

backfills_app = typer.Typer(no_args_is_help=True, help="Backfills and their progress.")


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)
    app.add_typer(backfills_app, name="backfills")


def _time(value: str) -> dt.datetime:
    try:
        return backfill_.utc(dt.datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter(f"{value[:60]!r} is not an ISO time (2026-01-31 or "
                                 "2026-01-31T06:00:00+01:00; naive is UTC)") from None


IdArg = Annotated[str, typer.Argument(help="The backfill's id.")]


def backfill(
    dag_id: Annotated[str, typer.Argument(help="The DAG's id.", callback=an_id)],
    start: Annotated[str, typer.Option("--start", help="First logical time covered (ISO; "
                                       "naive is UTC).")],
    end: Annotated[str, typer.Option("--end", help="End of the interval, not covered.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the count and the first "
                                          "and last logical times; write nothing.")] = False,
    reprocess: Annotated[str, typer.Option(
        help="A logical time that has a run: none (leave it), failed (rerun its failed "
        "tasks if it failed), all (rerun it from its roots).")] = "none",
    max_active: Annotated[int, typer.Option("--max-active", help="Runs at a time.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Run a DAG for each logical time of its schedule in [start, end), oldest first, as
    its runs end: a year of hourly runs is accepted at once and created as slots free."""
    with client() as c:
        done = c.backfill(dag_id, _time(start), _time(end), reprocess=reprocess,
                          max_active=max_active, dry_run=dry_run)
    w = done.window
    if as_json:
        render.dump({"backfill_id": done.backfill_id, "total": w.total,
                     "first": w.first.isoformat() if w.first else None,
                     "last": w.last.isoformat() if w.last else None, "dry_run": dry_run})
        return
    span = (f"{w.first.isoformat()} .. {w.last.isoformat()}" if w.first and w.last
            else "no logical time")
    if dry_run:
        render.out.print(f"{w.total} runs: {span} (dry run: nothing written)", highlight=False)
        return
    render.out.print(done.backfill_id or "", highlight=False)
    render.err.print(f"backfill of {w.total} logical times ({span}), {max_active} at a "
                     f"time: orchestrator backfills show {done.backfill_id}", highlight=False)


@backfills_app.command("list")
def backfills_list(dag: Annotated[str | None, typer.Option(
                       help="Only this DAG's.", callback=an_id)] = None,
                   as_json: JsonOpt = False) -> None:
    """Backfills, newest first, with their progress."""
    with client() as c:
        found = c.store.backfills(dag)
    if as_json:
        render.dump([b.model_dump(mode="json") for b in found])
        return
    table = Table("backfill", "dag", "state", "handled", "runs", "from", "to", "next")
    table.columns[0].no_wrap = True
    for b in found:
        table.add_row(b.id, escape(b.dag_id), b.state, f"{b.handled}/{b.total}", _runs(b),
                      b.start.isoformat(), b.end.isoformat(),
                      b.cursor.isoformat() if b.cursor else "")
    render.out.print(table)


@backfills_app.command("show")
def backfills_show(backfill_id: IdArg, as_json: JsonOpt = False) -> None:
    """One backfill: its interval, progress and runs by state."""
    with client() as c:
        b = c.store.backfill(backfill_id)
    if as_json:
        render.dump(b.model_dump(mode="json"))
        return
    render.out.print(f"backfill [bold]{b.id}[/bold]  dag {escape(b.dag_id)}  {b.state}\n"
                     f"[{b.start.isoformat()}, {b.end.isoformat()})  handled "
                     f"{b.handled}/{b.total}  {b.max_active} at a time  reprocess "
                     f"{b.reprocess}\nruns: {_runs(b) or 'none yet'}", highlight=False)


@backfills_app.command("cancel")
def backfills_cancel(backfill_id: IdArg) -> None:
    """Create no more runs, and cancel the ones going."""
    with client() as c:
        cancelled = c.cancel_backfill(backfill_id)
    render.err.print(f"backfill {backfill_id} cancelled, and {len(cancelled)} of its runs",
                     highlight=False)


def _runs(b: records.Backfill) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(b.runs.items()))
