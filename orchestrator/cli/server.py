"""``orchestrator server``: the REST API, the run view and /metrics on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator import settings as settings_
from orchestrator.cli import render

GRACEFUL_S = 5
"""On SIGINT/SIGTERM, open requests get this long (a followed log stream never ends on
its own)."""


def register(app: typer.Typer) -> None:
    app.command("server")(server_cmd)


def server_cmd(host: Annotated[str | None, typer.Option(
                   help="Address to bind (default: ORCH_SERVER_HOST, 127.0.0.1).")] = None,
               port: Annotated[int | None, typer.Option(
                   min=1, max=65535, help="Port (default: ORCH_SERVER_PORT, 8300).")] = None,
               ) -> None:
    """Serve the REST API (/api/v1, /docs), the run view and /metrics until Ctrl-C. Every
    route but /healthz needs a token (`orchestrator tokens create`)."""
    import uvicorn

    from orchestrator.api.app import create_app

    settings = settings_.load()
    app = create_app(settings)  # refuses here, in one line, if the schema is behind
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    render.err.print(f"orchestrator server on http://{shown}:{bind_port} (API docs at /docs)",
                     highlight=False)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="info",
                timeout_graceful_shutdown=GRACEFUL_S, server_header=False)
