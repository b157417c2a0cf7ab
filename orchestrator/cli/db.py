"""``orchestrator db upgrade|current``: the state database's schema, migrated on purpose."""

from __future__ import annotations

import typer

from orchestrator import settings as settings_
from orchestrator.cli import render
from orchestrator.store import Store, schema

db_app = typer.Typer(no_args_is_help=True, help="The state database's schema.")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def _store() -> Store:
    return Store(settings_.load().database.url)


def _where(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema of ORCH_DATABASE_URL to this version's (safe to run again)."""
    store = _store()
    try:
        before, after = store.upgrade()
    finally:
        store.dispose()
    if before == after:
        render.out.print(f"database {_where(store)} is at schema {after}: nothing to do")
    else:
        render.out.print(f"database {_where(store)}: upgraded from {before or 'empty'} "
                         f"to {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of ORCH_DATABASE_URL; exit 1 if it is behind."""
    store = _store()
    try:
        at = store.schema_revision()
    finally:
        store.dispose()
    head = schema.head()
    render.out.print(f"database {_where(store)}: schema {at or 'none'} (this version needs "
                     f"{head})")
    if at != head:
        render.err.print("run `orchestrator db upgrade`")
        raise typer.Exit(1)
