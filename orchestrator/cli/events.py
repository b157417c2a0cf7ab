"""``orchestrator events emit|list``: named events, and the runs that consumed them."""

from __future__ import annotations

import enum
import json
import re
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator import errors
from orchestrator.cli import common, render
from orchestrator.cli.common import JsonOpt, client
from orchestrator.model import records, schedule
from orchestrator.model.compiled import SHORT

events_app = typer.Typer(no_args_is_help=True,
                         help="Named events: each starts a run of the DAGs scheduled on it.")
_NAME = re.compile(schedule.ASSET_PATTERN)


class Kind(enum.StrEnum):
    EVENT = "event"
    ASSET = "asset"


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


def an_event_name(value: str | None) -> str | None:
    if value is not None and not _NAME.fullmatch(value):
        shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
        raise typer.BadParameter(f"{shown} is not an event name: event names match "
                                 f"{schedule.ASSET_PATTERN}")
    return value


def parse_payload(raw: str | None) -> Any:
    """The payload as JSON; a message that says where it stops being JSON (never the
    text itself: it may be long, or hold what its writer did not mean to show)."""
    if raw is None:
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise errors.InvalidArgument(f"--payload is not JSON: {exc.msg} at line {exc.lineno} "
                                     f"column {exc.colno}; nothing was emitted") from None
    except RecursionError:
        raise errors.InvalidArgument("--payload is nested too deep; nothing was emitted"
                                     ) from None
    except ValueError as exc:  # an integer of more digits than Python turns into an int
        raise errors.InvalidArgument(f"--payload: {exc}; nothing was emitted") from None


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON (and PostgreSQL) has neither.
    raise errors.InvalidArgument(f"--payload: {name} is not JSON (it has no NaN or "
                                 "infinity); nothing was emitted")


NameArg = Annotated[str, typer.Argument(help="The event's name (DAGs scheduled on "
                                              "{event: NAME} consume it).",
                                         callback=an_event_name)]
PayloadOpt = Annotated[str | None, typer.Option(
    help="A JSON value the runs' tasks read as context().payload['payload'].")]


@events_app.command("emit")
def events_emit(name: NameArg, payload: PayloadOpt = None, as_json: JsonOpt = False) -> None:
    """Emit event NAME: every DAG scheduled on it and not paused gets a run (queued while
    its max_active_runs are running); a paused one keeps it pending until unpaused."""
    value = parse_payload(payload)  # before connecting: bad input is refused offline
    with client() as c:
        done = c.emit(name, value)
    if as_json:
        render.dump({"event_id": done.event_id, "runs": done.runs, "started": done.started,
                     "pending": done.pending, "unsent": done.unsent})
        return
    render.out.print(done.event_id)
    queued = [r for r in done.runs if r not in done.started]
    if done.runs:
        what = f"started {len(done.started)} run(s): {', '.join(done.started) or '-'}"
        if queued:
            what += f"; queued {len(queued)} for a run slot: {', '.join(queued)}"
        render.err.print(f"event {name!r} {what}", highlight=False)
    if done.pending:
        render.err.print(f"event {name!r} is pending for {done.pending} DAG(s) paused or "
                         "not scheduled on it yet: consumed when one is unpaused or "
                         "subscribes", highlight=False)
    if done.unsent:
        render.err.print(f"the broker did not take the first tasks of {', '.join(done.unsent)}: "
                         "the coordinator sends them", highlight=False)



def _status(e: records.Event) -> str:
    return "consumed" if e.consumers and all(r for _, r in e.consumers) else "pending"


@events_app.command("list")
def events_list(name: Annotated[str | None, typer.Option(
                    help="Only events of this name.", callback=an_event_name)] = None,
                kind: Annotated[Kind | None, typer.Option(
                    help="Only named events (event) or asset updates (asset).")] = None,
                pending: Annotated[bool, typer.Option(
                    "--pending", help="Only those some DAG has not consumed yet.")] = False,
                limit: Annotated[int, typer.Option(min=1, max=1000,
                                                   help="At most this many.")] = 100,
                as_json: JsonOpt = False) -> None:
    """Events newest first: pending or consumed, and by which DAG's run."""
    with common.store() as store:
        found = store.events(kind.value if kind else None, name, pending, limit)
    if as_json:
        render.dump([{"id": e.id, "kind": e.kind, "name": e.name,
                      "created_at": e.created_at.isoformat(), "status": _status(e),
                      "consumers": [{"dag_id": d, "run_id": r} for d, r in e.consumers],
                      "payload": e.payload, "run_id": e.run_id, "task_id": e.task_id}
                     for e in found])
        return
    # Ids and runs by their first characters, as `runs list` shows runs (--json has them
    # whole): on 80 columns the full ids would squeeze out the rest.
    table = Table("event", "name", "created", "status", "consumed by (DAG run)")
    for column in (table.columns[0], table.columns[-1]):
        column.no_wrap, column.min_width = True, SHORT
    for e in found:
        by = "\n".join(f"{d} {r[:SHORT]}" if r else f"{d} pending" for d, r in e.consumers)
        name = escape(e.name) + (" (asset)" if e.kind == "asset" else "")
        table.add_row(e.id[:SHORT], name, f"{e.created_at:%m-%d %H:%M:%S}", _status(e),
                      by or "no DAG yet")
    render.out.print(table)
