"""``orchestrator tokens create|list|revoke``: the API's bearer tokens.

A token is printed once, when it is made, alone on its line of stdout (so a script can
capture it: ``TOKEN=$(orchestrator tokens create --role viewer)``); everything else goes
to stderr. Only its sha256 is stored, so a lost token is revoked and replaced, never shown
again.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import common, render
from orchestrator.cli.common import JsonOpt
from orchestrator.model.records import Role

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (REST API and run view).")


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")



def _name(value: str | None) -> str | None:
    if value is not None and not (0 < len(value) <= 100 and value.isprintable()):
        raise typer.BadParameter("a token name is 1 to 100 printable characters")
    return value


@tokens_app.command("create")
def tokens_create(role: Annotated[Role, typer.Option(
                      help="viewer: read only; operator: also trigger, cancel and rerun.")],
                  name: Annotated[str | None, typer.Option(
                      help="A name to list and revoke it by (default: ROLE-ID).",
                      callback=_name)] = None) -> None:
    """Make a token and print it, once, on stdout."""
    with common.store() as store:
        token_id, token = store.create_token(name, role.value)
        named = next(t.name for t in store.list_tokens() if t.id == token_id)
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    render.err.print(f"{role.value} token {escape(named)!r} (id {token_id}) created; it is "
                     "shown only now: keep it somewhere safe", highlight=False)


@tokens_app.command("list")
def tokens_list(as_json: JsonOpt = False) -> None:
    """Every token with its role and when it was made, last used and revoked (never the
    token or its hash)."""
    with common.store() as store:
        found = store.list_tokens()
    if as_json:
        render.dump([t.model_dump(mode="json") for t in found])
        return
    table = Table("id", "name", "role", "created", "last used", "revoked")
    for column in table.columns:
        column.no_wrap = True
    for t in found:
        table.add_row(t.id, escape(t.name), t.role.value, f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    # Piped, each token stays on one line whole (ids are what `revoke` takes).
    out = render.out if render.out.is_terminal else Console(width=200, soft_wrap=True)
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(id_or_name: Annotated[str, typer.Argument(
        metavar="ID_OR_NAME", help="The token's id or name.")]) -> None:
    """Revoke a token: the next request with it gets 401."""
    with common.store() as store:
        store.revoke_token(id_or_name)
    render.out.print(f"revoked {escape(id_or_name)}", highlight=False)
