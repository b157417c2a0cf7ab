"""``orchestrator alerts list|show|listen``: the alerts outbox, and a local receiver.

``list`` and ``show`` read the notifications and every try at delivering them (never
their target: no URL, address or secret is stored where these read). ``listen`` is a
receiver to point a webhook rule at, to see what an alert looks like and whether its
signature verifies (alerts_listen.py).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import alerts_listen, render
from orchestrator.cli.common import JsonOpt, a_run_id, client
from orchestrator.model import records
from orchestrator.model.compiled import SHORT
from orchestrator.observability import masking

alerts_app = typer.Typer(no_args_is_help=True,
                         help="Alerts: what the notify rules sent, each try, and a local "
                              "receiver to try a webhook with.")
_ID = re.compile(r"n[0-9a-f]{0,31}")
_STYLE = {"delivered": "green", "failed": "red", "sending": "cyan", "pending": "yellow"}


class State(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    alerts_listen.register(alerts_app)


def a_notification_id(value: str) -> str:
    if not _ID.fullmatch(value):
        shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
        raise typer.BadParameter(f"{shown} is not a notification id: they are 'n' and 31 "
                                 "hex digits (a unique prefix of one will do)")
    return value


def masked(n: records.Notification) -> dict[str, Any]:
    """The notification as JSON, its errors, details and payload masked with the CLI's
    secrets (the coordinator masked what it sent; this adds the CLI's own)."""
    masker = masking.process_masker()
    data = n.model_dump(mode="json")
    for key in ("last_error",):
        if data[key] is not None:
            data[key] = masker.mask(data[key])
    data["payload"] = masker.mask_value(data["payload"])
    for d in data["deliveries"]:
        if d["detail"] is not None:
            d["detail"] = masker.mask(d["detail"])
    return data


def _state(state: str) -> str:
    return f"[{_STYLE.get(state, 'white')}]{state}[/]"


def _one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return escape(flat if len(flat) <= width else flat[:width - 1] + "…")


@alerts_app.command("list")
def alerts_list(run: Annotated[str | None, typer.Option(
                    "--run", help="Only this run's (an id or a unique prefix), oldest first.",
                    callback=lambda v: None if v is None else a_run_id(v))] = None,
                state: Annotated[State | None, typer.Option(
                    help="Only those in this state (failed: given up).")] = None,
                limit: Annotated[int, typer.Option(min=1, max=1000,
                                                   help="At most this many.")] = 100,
                as_json: JsonOpt = False) -> None:
    """Notifications newest first (a run's: oldest first): event, channel, task, state,
    tries and the last error."""
    with client() as c:
        run_id = c.resolve(run) if run is not None else None
        found = c.notifications(run_id, state=state.value if state else None, limit=limit)
    found = found[:limit]
    rows = [masked(n) for n in found]
    if as_json:
        render.dump(rows)
        return
    if not rows:
        render.err.print("no notifications" + (f" for run {run_id}" if run_id else "")
                         + (f" in state {state.value}" if state else ""), highlight=False)
        return
    # ids by their first characters, as `runs list` shows runs (--json has them whole);
    # listing several runs, each alert's run goes under its id: 80 columns hold the rest
    table = Table("alert" if run_id else "alert / run", "event", "via", "task", "state",
                  "tries", "last error")
    for column in table.columns[:3] + table.columns[4:6]:  # never cut: the error wraps
        column.no_wrap = True
    table.columns[0].min_width = SHORT
    for column in (table.columns[3], table.columns[6]):  # folded, not cut, when narrow
        column.overflow = "fold"
    for n in rows:
        task = n["task_id"] or (n["payload"].get("task_id") if isinstance(n["payload"], dict)
                                else None)
        ids = n["id"][:SHORT] + ("" if run_id else f"\n[dim]{n['run_id'][:SHORT]}[/dim]")
        table.add_row(ids, n["event"], n["channel"], escape(str(task or "")),
                      _state(n["state"]), str(n["tries"]), _one_line(n["last_error"], 60))
    render.out.print(table)


@alerts_app.command("show")
def alerts_show(notification_id: Annotated[str, typer.Argument(
                    metavar="ID", help="A notification id (the X-Orchestrator-Event-Id "
                    "receivers get), or a unique prefix of one.",
                    callback=a_notification_id)],
                as_json: JsonOpt = False) -> None:
    """One notification: what it says, its state, and each try to deliver it."""
    with client() as c:
        n = masked(c.notification(notification_id))
    if as_json:
        render.dump(n)
        return
    out = render.out
    out.print(f"alert [bold]{n['id']}[/bold]  {n['event']}  {n['channel']}  "
              f"{_state(n['state'])}", highlight=False)
    task = f"  task {escape(n['task_id'])}" if n["task_id"] else ""
    if n["task_id"] and n["attempt"]:
        task += f" (attempt {n['attempt']})"
    out.print(f"dag {escape(n['dag_id'])}  run {n['run_id']}{task}", highlight=False)
    times = f"raised {n['created_at']}  tries {n['tries']}"
    if n["delivered_at"]:
        times += f"  delivered {n['delivered_at']}"
    elif n["state"] == "pending":
        times += f"  next try {n['next_at']}"
    out.print(times, highlight=False)
    said = n["payload"].get("error") if isinstance(n["payload"], dict) else None
    if said:
        out.print(f"says: {escape(str(said))}", highlight=False)
    if n["last_error"]:
        out.print(f"[red]last error[/red]: {escape(n['last_error'])}", highlight=False)
    if not n["deliveries"]:
        out.print("not tried yet: a coordinator sends it on its next pass", highlight=False)
        return
    table = Table("try", "started (UTC)", "took", "outcome", "status", "detail", "by")
    for column in table.columns[:5]:
        column.no_wrap = True
    for column in table.columns[5:]:  # folded, not cut, when narrow
        column.overflow = "fold"
    last = n["deliveries"][-1]["attempt"]
    for d in n["deliveries"]:
        # a try without an outcome is being made (the last, while sending) or was cut off
        # by its sender's death (a later try took over)
        going = "sending" if n["state"] == "sending" and d["attempt"] == last else "cut off"
        started = dt.datetime.fromisoformat(d["started_at"])
        took = "" if d["finished_at"] is None else \
            f"{(dt.datetime.fromisoformat(d['finished_at']) - started).total_seconds():.2f}s"
        table.add_row(str(d["attempt"]), f"{started.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}",
                      took, _state(d["outcome"]) if d["outcome"] else going,
                      "" if d["status"] is None else str(d["status"]),
                      escape(d["detail"] or ""), escape(d["holder"]))
    out.print(table)
