"""``orchestrator schedules list`` (``dags pause|unpause`` are in cli/dags.py)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import common, render
from orchestrator.cli.common import JsonOpt

schedules_app = typer.Typer(no_args_is_help=True, help="Schedules and their next fires.")



@schedules_app.command("list")
def schedules_list(as_json: JsonOpt = False) -> None:
    """Each DAG the scheduler knows: schedule, zone, paused, next and last fire, skipped."""
    with common.store() as store:
        found = store.dag_states()
    if as_json:
        render.dump([s.model_dump(mode="json") for s in found])
        return
    table = Table("DAG", "schedule", "timezone", "paused", "next fire", "last fire",
                  "skipped")
    table.columns[0].no_wrap = True
    for s in found:
        table.add_row(s.dag_id, escape(s.schedule or "-"), s.timezone or "-",
                      "yes" if s.paused else "no", _at(s.next_fire), _at(s.last_fire),
                      str(s.skipped))
    render.out.print(table)


def _at(value: object) -> str:
    return "-" if value is None else str(value)
