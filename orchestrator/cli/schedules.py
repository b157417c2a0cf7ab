"""``orchestrator schedules list`` and ``orchestrator dags pause|unpause``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.authoring import discovery
from orchestrator.cli import render
from orchestrator.cli.common import JsonOpt, an_id
from orchestrator.store import Store

schedules_app = typer.Typer(no_args_is_help=True, help="Schedules and their next fires.")
DagArg = Annotated[str, typer.Argument(help="The DAG's id.", callback=an_id)]


def register(app: typer.Typer, dags_app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
    dags_app.command("pause")(dags_pause)
    dags_app.command("unpause")(dags_unpause)


@contextmanager
def _store() -> Iterator[Store]:
    store = Store(settings_.load().database.url)
    try:
        store.check_schema()
        yield store
    finally:
        store.dispose()


def _pause(dag_id: str, paused: bool) -> None:
    settings = settings_.load()
    with _store() as store:
        # A DAG is known by its file or by a coordinator having registered it: pausing a
        # typo must not create a row for a DAG nobody has.
        if not store.dag_states([dag_id]) and dag_id not in discovery.load_configured(
                settings.dags).dags:
            raise errors.UnknownDag(f"no DAG {dag_id!r} in ORCH_DAGS_PATH or the database")
        store.set_paused(dag_id, paused)
    what = "paused: it gets no scheduled runs" if paused else "unpaused"
    render.err.print(f"DAG {dag_id!r} {what}", highlight=False)


def dags_pause(dag_id: DagArg) -> None:
    """Pause a DAG: no scheduled or triggered runs until it is unpaused."""
    _pause(dag_id, True)


def dags_unpause(dag_id: DagArg) -> None:
    """Unpause a DAG: its schedule fires again (missed ticks follow its catchup)."""
    _pause(dag_id, False)


@schedules_app.command("list")
def schedules_list(as_json: JsonOpt = False) -> None:
    """Each DAG the scheduler knows: schedule, zone, paused, next and last fire, skipped."""
    with _store() as store:
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
