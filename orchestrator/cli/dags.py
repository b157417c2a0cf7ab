"""``orchestrator dags list|validate|pause|unpause``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.authoring import discovery
from orchestrator.cli import render
from orchestrator.cli.common import DagIdArg, JsonOpt, a_path

dags_app = typer.Typer(no_args_is_help=True, help="List, validate, pause and unpause DAGs.")


def register(app: typer.Typer) -> None:
    app.add_typer(dags_app, name="dags")


@dags_app.command("list")
def dags_list(as_json: JsonOpt = False) -> None:
    """List the DAGs in ORCH_DAGS_PATH; files that failed to load are named on stderr."""
    bag = discovery.load_configured(settings_.load().dags)
    found = sorted(bag.dags.values(), key=lambda d: d.id)
    if as_json:
        render.dump([{"id": d.id, "description": d.spec.description, "tasks": len(d.spec.tasks),
                      "source": d.spec.source, "version": d.version} for d in found])
    else:
        table = Table("DAG", "tasks", "version", "description", "source")
        for d in found:
            table.add_row(d.id, str(len(d.spec.tasks)), d.short_version,  # user text: escaped
                          escape(d.spec.description.split("\n")[0]), escape(d.spec.source or ""))
        render.out.print(table)
    _print_errors(bag.errors)


@dags_app.command("validate")
def dags_validate(path: Annotated[Path | None, typer.Argument(
        help="A DAG file or folder (default: ORCH_DAGS_PATH).", callback=a_path)] = None,
                  ) -> None:
    """Check DAG files; exit 1 and name every problem if any is invalid."""
    dags = settings_.load().dags
    target = path or dags.path
    if target.is_file():
        bag = discovery.load_configured(dags, target.parent)
        problems = {k: v for k, v in bag.errors.items() if Path(k) == target.resolve()}
        found = [d for d in bag.dags.values() if Path(d.spec.source or "") == target.resolve()]
        if not found and not problems:
            problems = {str(target): errors.DagError("defines no DAG (or is not a .py, "
                                                     ".yaml or .yml file discovery reads)",
                                                     source=str(target.resolve()))}
    else:
        bag = discovery.load_configured(dags, target)
        problems, found = bag.errors, list(bag.dags.values())
    for d in found:
        render.out.print(f"[green]ok[/green] {d.id} ({len(d.spec.tasks)} tasks) "
                         f"{escape(d.spec.source or '')}")
    _print_errors(problems)
    if problems:
        raise typer.Exit(1)


def _print_errors(problems: dict[str, errors.DagError]) -> None:
    for e in problems.values():  # each names its file (and line), as DagError always does
        render.err.print(f"[red]invalid[/red] {escape(str(e))}")


def _pause(dag_id: str, paused: bool) -> None:
    # Imported here: `orchestrator dags validate` should not need SQLAlchemy or Celery.
    from orchestrator.control.triggers import Events
    from orchestrator.wiring import Wiring

    with Wiring(settings_.load()) as wiring:
        # A DAG is known by its file or by a coordinator having registered it: pausing a
        # typo must not create a row for a DAG nobody has.
        if not wiring.store.dag_states([dag_id]) and dag_id not in wiring.bag.dags:
            raise errors.UnknownDag(f"no DAG {dag_id!r} in ORCH_DAGS_PATH or the database")
        if paused:
            wiring.store.set_paused(dag_id, True)
        else:
            done = Events(wiring.settings, wiring.outcomes).set_paused(dag_id, False)
    if paused:
        render.err.print(f"DAG {dag_id!r} paused: it gets no scheduled or triggered runs",
                         highlight=False)
        return
    render.err.print(f"DAG {dag_id!r} unpaused", highlight=False)
    if done.runs:
        queued = [r for r in done.runs if r not in done.started]
        render.err.print(f"its pending events started {len(done.started)} run(s): "
                         f"{', '.join(done.started) or '-'}"
                         + (f"; queued {len(queued)} for a run slot" if queued else ""),
                         highlight=False)
    if done.unsent:
        render.err.print(f"the first tasks of {', '.join(done.unsent)} were not sent (no "
                         "broker here, or it went away): the coordinator sends them",
                         highlight=False)


@dags_app.command("pause")
def dags_pause(dag_id: DagIdArg) -> None:
    """Pause a DAG: no scheduled or triggered runs until it is unpaused; the events it
    is scheduled on wait for it."""
    _pause(dag_id, True)


@dags_app.command("unpause")
def dags_unpause(dag_id: DagIdArg) -> None:
    """Unpause a DAG: its schedule fires again (missed ticks follow its catchup) and the
    events that arrived while it was paused start their runs now."""
    _pause(dag_id, False)
