"""``orchestrator pools set|list|delete``: named slot pools."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import common, render
from orchestrator.cli.common import JsonOpt

pools_app = typer.Typer(no_args_is_help=True, help="Slot pools (tasks' pool= option).")


def register(app: typer.Typer) -> None:
    app.add_typer(pools_app, name="pools")



@pools_app.command("set")
def pools_set(name: Annotated[str, typer.Argument(help="The pool's name.")],
              slots: Annotated[int | None, typer.Option(
                  help="How many slots it has (leave out for unbounded).")] = None,
              description: Annotated[str | None, typer.Option(
                  help="What it is for (default: keep the one it has).")] = None,
              ) -> None:
    """Create a pool or change its slots."""
    with common.store() as store:
        pool = store.set_pool(name, slots, description)
    limit = "unbounded" if pool.slots is None else f"{pool.slots} slots"
    render.err.print(f"pool {escape(pool.name)!r}: {limit}, {pool.used} in use",
                     highlight=False)


@pools_app.command("list")
def pools_list(as_json: JsonOpt = False) -> None:
    """Every pool with its slots and usage."""
    with common.store() as store:
        found = store.pools()
    if as_json:
        render.dump([p.model_dump(mode="json") for p in found])
        return
    table = Table("pool", "slots", "used", "queued", "running", "waiting", "description")
    table.columns[0].no_wrap = True  # a name is what scripts and people copy from here
    for p in found:
        table.add_row(escape(p.name), "unbounded" if p.slots is None else str(p.slots),
                      str(p.used), str(p.queued), str(p.running), str(p.waiting),
                      escape(p.description))
    render.out.print(table)


@pools_app.command("delete")
def pools_delete(name: Annotated[str, typer.Argument(help="The pool's name.")]) -> None:
    """Delete a pool no task holds or waits on (never the default pool)."""
    with common.store() as store:
        store.delete_pool(name)
    render.err.print(f"pool {escape(name)!r} deleted", highlight=False)
