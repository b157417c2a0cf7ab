"""What several commands share: the client, params, run ids, options."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator import errors

if TYPE_CHECKING:
    from orchestrator.client import Client

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="k=v; v is read as JSON when it parses, else as a string.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait, with a progress bar.")]
TimeoutOpt = Annotated[float | None, typer.Option(help="Seconds to wait.")]
RunIdArg = Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")]


def client() -> Client:
    # Imported here: `orchestrator dags validate` should not need SQLAlchemy or Celery.
    from orchestrator.client import Client

    return Client()


def parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise errors.ParamsError(f"--param takes k=v, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params
