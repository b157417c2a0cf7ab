"""The ``orchestrator`` command: a thin layer over the client, the worker and the stack.

Errors exit 2 with their message; a run that failed exits 1.
"""

from __future__ import annotations

import sys

import typer

from orchestrator import errors
from orchestrator.cli import (
    alerts,
    backfill,
    connections,
    dags,
    db,
    events,
    pools,
    render,
    runs,
    schedules,
    server,
    services,
    tokens,
)
from orchestrator.cli import logs as log_cmds

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Run DAGs on Celery workers, tracked in SQL.")
for part in (dags, runs, db, services, server, tokens, pools, events, backfill, alerts,
             connections):
    part.register(app)
log_cmds.register(app)
# `dags pause|unpause` are dags.py's: unpausing sends the runs pending events start.
app.add_typer(schedules.schedules_app, name="schedules")


def main() -> None:
    try:
        app()
    except errors.OrchestratorError as exc:
        render.err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        sys.exit(2)
