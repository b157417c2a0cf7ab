"""``orchestrator connections list|test``: the named connections this machine's
processes see (``ORCH_CONN_<NAME>`` and ``ORCH_CONNECTIONS_FILE``), never their secrets."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import render
from orchestrator.cli.common import JsonOpt
from orchestrator.execution import connections
from orchestrator.observability import masking

connections_app = typer.Typer(
    no_args_is_help=True,
    help="Named connections of sql and http tasks (as a worker on this machine sees them).")


def register(app: typer.Typer) -> None:
    app.add_typer(connections_app, name="connections")


@connections_app.command("list")
def connections_list(as_json: JsonOpt = False) -> None:
    """Every connection, its password and header values masked."""
    masker = masking.process_masker()
    shown = [masker.mask_value(connections.describe(c))
             for c in connections.all_connections()]
    if as_json:
        render.dump(shown)
        return
    table = Table("name", "url", "headers", "from")
    table.columns[0].no_wrap = True
    for c in shown:
        table.add_row(escape(c["name"]), escape(c["url"]), escape(", ".join(c["headers"])),
                      escape(c["source"]))
    render.out.print(table)


@connections_app.command("test")
def connections_test(
        name: Annotated[str, typer.Argument(help="The connection's name.")],
        timeout: Annotated[float, typer.Option(
            help="Seconds to wait for the other side.", min=0.1, max=600)] = 10.0,
        as_json: JsonOpt = False) -> None:
    """Connect (a SQL database: run SELECT 1; an HTTP service: one GET) and say how it
    went; exits 1 when it could not."""
    from orchestrator.kinds.probe import probe  # SQLAlchemy and httpx, only for this command

    conn = connections.get(name)
    result = probe(conn, timeout)
    masker = masking.process_masker().with_secrets(conn.secrets())
    detail = masker.mask(result.detail)
    if as_json:
        render.dump({"name": name, "url": masker.mask(conn.masked_url), "ok": result.ok,
                     "detail": detail, "seconds": round(result.seconds, 3)})
    else:
        verdict = "[green]ok[/green]" if result.ok else "[red]failed[/red]"
        render.out.print(f"{escape(name)} ({escape(masker.mask(conn.masked_url))}): {verdict} "
                         f"in {result.seconds:.2f} s: {escape(detail)}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)



