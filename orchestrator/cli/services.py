"""The long-running roles: ``worker``, ``coordinator``, ``up`` (the local stack), and
``quickstart`` (what ``make run`` does)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.cli import render
from orchestrator.cli.common import (
    MAX_PROCESSES,
    DagIdArg,
    ParamOpt,
    a_hostname,
    a_log_level,
    parse_params,
    queue_names,
    seconds,
)
from orchestrator.model.states import RunState

if TYPE_CHECKING:  # the roles import their heavy parts only when they run
    from orchestrator.devstack.stack import LocalStack
    from orchestrator.devstack.state import StackState


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_cmd)
    app.command("coordinator")(coordinator_cmd)
    app.command("up")(up_cmd)
    app.command("quickstart")(quickstart_cmd)


def worker_cmd(queues: Annotated[str | None, typer.Option(
                   help="Comma-separated queues to consume (default: ORCH_DEFAULT_QUEUE).",
                   callback=queue_names)] = None,
               concurrency: Annotated[int | None, typer.Option(
                   min=1, max=MAX_PROCESSES,
                   help="Pool processes (default: ORCH_WORKER_CONCURRENCY, or CPUs).",
               )] = None,
               hostname: Annotated[str | None, typer.Option(help="Celery node name.",
                                                            callback=a_hostname)] = None,
               loglevel: Annotated[str, typer.Option(callback=a_log_level)] = "INFO") -> None:
    """Run a Celery worker for every DAG in ORCH_DAGS_PATH (needs ORCH_BROKER_URL)."""
    from workers.app import create_app

    settings = settings_.load()
    celery_app = create_app(settings)
    argv = ["worker", f"--loglevel={loglevel}", "--pool=prefork", "--without-mingle",
            "--without-gossip", f"--hostname={hostname or f'orch-{os.getpid()}@%h'}",
            f"--queues={queues or settings.worker.default_queue}"]
    n = concurrency or settings.worker.concurrency
    if n:
        argv.append(f"--concurrency={n}")
    celery_app.worker_main(argv)


def coordinator_cmd() -> None:
    """Run the coordinator: the reconciler resends work the database says is stuck
    (lost messages, lost workers, overdue work). Several may run at once. Stops on
    SIGTERM or Ctrl-C."""
    from orchestrator.coordinator import service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.run_forever(settings_.load(), stop)


def up_cmd(workers: Annotated[int, typer.Option(min=0, max=MAX_PROCESSES)] = 1,
           concurrency: Annotated[int, typer.Option(min=1, max=MAX_PROCESSES)] = 2,
           flower: Annotated[bool, typer.Option(help="Start Flower on 127.0.0.1.")] = True,
           server: Annotated[bool, typer.Option(
               help="Start the server (REST API, run view, metrics) on 127.0.0.1.")] = True,
           ) -> None:
    """Start the local stack (embedded broker unless ORCH_BROKER_URL, workers, a
    coordinator, Flower, the server) until Ctrl-C. It keeps its endpoint and credentials
    in .orchestrator/, so a restart comes back the same and any command run in this
    folder finds it; the server's operator token for you is there too."""
    from orchestrator.devstack import server as server_
    from orchestrator.devstack import state as state_
    from orchestrator.devstack.stack import LocalStack as Stack

    settings = settings_.load(stack_file=False)  # decide afresh what up records
    project = Path.cwd()
    recorded = state_.load(project)
    _refuse_a_second_stack(recorded)
    try:
        stack = Stack(settings, workers=workers, concurrency=concurrency, flower=flower,
                           coordinator=True, server=server, broker_port=recorded.broker_port,
                           broker_password=recorded.broker_password,
                           flower_password=recorded.flower_password,
                           signing_key=recorded.signing_key)
        with stack as s:
            if s.broker is not None:
                recorded.broker_port = s.broker.port
            recorded.env = _recorded_env(s.settings, flower, server)
            path = state_.save(recorded, project)
            token = (server_.ensure_token(s.settings.database.url, state_.folder(project))
                     if server else None)
            _announce(s, settings, workers, concurrency, path, token)
            _watch(s)
    except errors.TransportError as exc:
        if recorded.broker_port and "in use" in str(exc):
            raise errors.TransportError(
                f"the broker's port {recorded.broker_port}, recorded in {settings_.STATE_DIR}/, "
                "is taken by another program: stop it, or delete "
                f"{settings_.STATE_DIR}/{settings_.STACK_FILE} to pick a new port") from exc
        raise


def _refuse_a_second_stack(recorded: StackState) -> None:
    from orchestrator.transport.dispatch import Dispatcher, make_producer_app

    url = recorded.env.get("ORCH_BROKER_URL")
    if not url or "ORCH_BROKER_URL" in os.environ:
        return
    settings = settings_.load(stack_file=False)
    if not settings.security.signing_key:  # a Dispatcher needs one, even just to probe
        settings = settings.with_env(ORCH_SIGNING_KEY=recorded.signing_key)
    app = make_producer_app(settings, url)
    try:
        running = Dispatcher(app, settings).reachable(timeout=1.0)
    finally:
        app.close()
    if running:
        raise errors.OrchestratorError(
            f"a stack recorded in {settings_.STATE_DIR}/ is already running here (its broker "
            "answers): use it, or stop it first")


def _recorded_env(s: settings_.Settings, flower: bool, server: bool) -> dict[str, str]:
    env = {"ORCH_BROKER_URL": s.broker.url or "",
           "ORCH_DATABASE_URL": _absolute_sqlite(s.database.url),
           "ORCH_DAGS_PATH": str(s.dags.path.resolve()),
           "ORCH_DEFAULT_QUEUE": s.worker.default_queue,
           "ORCH_SIGNING_KEY": s.security.signing_key or ""}
    if flower:
        env["ORCH_FLOWER_PORT"] = str(s.flower.port)
    if server:
        env["ORCH_SERVER_PORT"] = str(s.server.port)
    if s.server.flower_url:  # so an `orchestrator server` started here links to it too
        env["ORCH_FLOWER_URL"] = s.server.flower_url
    return env


def _absolute_sqlite(url: str) -> str:
    """A relative SQLite path made absolute, so a command started elsewhere finds it."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        path = url[len(prefix):]
        if path and path != ":memory:":
            return prefix + str(Path(path).resolve())
    return url


def _announce(s: LocalStack, settings: settings_.Settings, workers: int, concurrency: int,
              path: Path, token: Path | None) -> None:
    from orchestrator.devstack.server import address
    from orchestrator.transport.dispatch import safe_url

    shown = (f"redis://127.0.0.1:{s.broker.port}/0 (embedded Valkey, password-protected)"
             if s.broker is not None else safe_url(s.settings.broker.url))
    render.out.print(f"broker   {shown}")
    render.out.print(f"database {safe_url(settings.database.url)}")
    render.out.print(f"workers  {workers} x {concurrency} processes, and a coordinator")
    if s.flower_proc is not None:
        # Never the password itself, even one the user chose: a terminal is often shared,
        # recorded or pasted.
        where = ("the ORCH_FLOWER_PASSWORD you set" if settings.flower.password
                 else f"password in {path}")
        render.out.print(f"flower   http://127.0.0.1:{settings.flower.port}  (user "
                         f"{settings.flower.user}; {where})")
    if s.server_proc is not None and token is not None:
        # Where the token is, never the token: the same reason as Flower's password.
        render.out.print(f"server   {address(s.settings)}  (REST API /api/v1, run view; "
                         f"operator token in {token})")
    render.out.print(f"state    {path} (credentials; commands run in this folder use it)")
    render.out.print("try:     orchestrator run example --wait   (in another shell, here)")
    if s.server_proc is not None and token is not None:
        render.out.print(f"         curl -H \"Authorization: Bearer $(cat "
                         f"{settings_.STATE_DIR}/{token.name})\" "
                         f"{address(s.settings)}/api/v1/runs")
    render.out.print("Ctrl-C stops everything.")


def _watch(s: LocalStack) -> None:
    try:
        while True:
            if not all(w.proc.poll() is None for w in s.workers):
                render.err.print("[red]a worker exited; stopping[/red]")
                raise typer.Exit(1)
            if s.flower_proc is not None and s.flower_proc.poll() is not None:
                render.err.print("[red]Flower exited; stopping[/red]")
                raise typer.Exit(1)
            if s.server_proc is not None and s.server_proc.poll() is not None:
                render.err.print("[red]the server exited; stopping[/red]")
                raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        render.out.print("stopping")


def quickstart_cmd(dag_id: DagIdArg = "example", param: ParamOpt = None,
                   concurrency: Annotated[int, typer.Option(min=1, max=MAX_PROCESSES)] = 2,
                   timeout: Annotated[float, typer.Option(callback=seconds)] = 120.0) -> None:
    """Run one DAG end to end on a throwaway local stack, show the result, stop
    everything (what `make run` does). Exit 1 if the run failed."""
    from orchestrator.authoring import discovery
    from orchestrator.client import Client
    from orchestrator.devstack.stack import LocalStack
    from orchestrator.transport.dispatch import safe_url

    settings = settings_.load(stack_file=False)
    params = parse_params(param)
    discovery.load_configured(settings.dags).get(dag_id)  # a typo fails here, before any process
    with LocalStack(settings, concurrency=concurrency) as s, Client(s.settings) as client:
        render.out.print(f"database {safe_url(settings.database.url)}, embedded broker, "
                         f"1 worker x {concurrency}")
        run_id = client.submit(dag_id, params)
        run = render.with_progress(client.wait, run_id, timeout)
        render.run(run, as_json=False)
    if run.state != RunState.SUCCESS:
        raise typer.Exit(1)
