"""``orchestrator dags list|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orchestrator import settings as settings_
from orchestrator.authoring import discovery
from orchestrator.cli import render
from orchestrator.cli.common import JsonOpt, a_path

dags_app = typer.Typer(no_args_is_help=True, help="List and validate DAGs.")


def register(app: typer.Typer) -> None:
    app.add_typer(dags_app, name="dags")


@dags_app.command("list")
def dags_list(as_json: JsonOpt = False) -> None:
    """List the DAGs in ORCH_DAGS_PATH."""
    bag = discovery.load(settings_.load().dags.path)
    found = sorted(bag.dags.values(), key=lambda d: d.id)
    if as_json:
        render.dump([{"id": d.id, "description": d.spec.description, "tasks": len(d.spec.tasks),
                      "source": d.spec.source, "version": d.version} for d in found])
    else:
        table = Table("DAG", "tasks", "version", "description", "source")
        for d in found:
            table.add_row(d.id, str(len(d.spec.tasks)), d.short_version,
                          d.spec.description.split("\n")[0], d.spec.source)
        render.out.print(table)
    for source, e in bag.errors.items():
        render.err.print(f"[red]error[/red] {source}: {e}")


@dags_app.command("validate")
def dags_validate(path: Annotated[Path | None, typer.Argument(
        help="A DAG file or folder (default: ORCH_DAGS_PATH).", callback=a_path)] = None,
                  ) -> None:
    """Check DAG files; exit 1 and name every problem if any is invalid."""
    target = path or settings_.load().dags.path
    if target.is_file():
        bag = discovery.load(target.parent)
        problems = {k: v for k, v in bag.errors.items() if Path(k) == target.resolve()}
        found = [d for d in bag.dags.values() if Path(d.spec.source or "") == target.resolve()]
    else:
        bag = discovery.load(target)
        problems, found = bag.errors, list(bag.dags.values())
    for d in found:
        render.out.print(f"[green]ok[/green] {d.id} ({len(d.spec.tasks)} tasks) {d.spec.source}")
    for e in problems.values():
        render.err.print(f"[red]invalid[/red] {e}")
    if problems:
        raise typer.Exit(1)
