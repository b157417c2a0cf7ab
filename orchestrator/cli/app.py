"""The ``orchestrator`` command: a thin layer over the client, the worker and the stack."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.model import records
from orchestrator.model.states import FINISHED_TASK, RunState, TaskState
from orchestrator.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Run DAGs on Celery workers, tracked in SQL.")
dags_app = typer.Typer(no_args_is_help=True, help="List and validate DAGs.")
runs_app = typer.Typer(no_args_is_help=True, help="Inspect runs.")
app.add_typer(dags_app, name="dags")
app.add_typer(runs_app, name="runs")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="k=v; v is read as JSON when it parses, else as a string.")]


def _client() -> Any:
    from orchestrator.client import Client

    return Client()


def _parse_params(items: list[str] | None) -> dict[str, Any]:
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


def _dump(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@dags_app.command("list")
def dags_list(as_json: JsonOpt = False) -> None:
    """List the DAGs in ORCH_DAGS_PATH."""
    bag = discovery.load(Settings().dags_path)
    if as_json:
        _dump([{"id": d.id, "description": d.description, "tasks": len(d.tasks),
                "source": d.source} for d in bag.dags.values()])
    else:
        table = Table("DAG", "tasks", "description", "source")
        for d in sorted(bag.dags.values(), key=lambda d: d.id):
            table.add_row(d.id, str(len(d.tasks)), d.description.split("\n")[0], d.source)
        out.print(table)
    for source, e in bag.errors.items():
        err.print(f"[red]error[/red] {source}: {e}")


@dags_app.command("validate")
def dags_validate(path: Annotated[Path | None, typer.Argument(
        help="A DAG file or folder (default: ORCH_DAGS_PATH).")] = None) -> None:
    """Check DAG files; exit 1 and name every problem if any is invalid."""
    target = path or Settings().dags_path
    if target.is_file():
        bag = discovery.load(target.parent)
        problems = {k: v for k, v in bag.errors.items() if Path(k) == target.resolve()}
        found = [d for d in bag.dags.values() if Path(d.source or "") == target.resolve()]
    else:
        bag = discovery.load(target)
        problems, found = bag.errors, list(bag.dags.values())
    for d in found:
        out.print(f"[green]ok[/green] {d.id} ({len(d.tasks)} tasks) {d.source}")
    for e in problems.values():
        err.print(f"[red]invalid[/red] {e}")
    if problems:
        raise typer.Exit(1)


@app.command("run")
def run_cmd(dag_id: str, param: ParamOpt = None,
            wait: Annotated[bool, typer.Option(
                "--wait", help="Wait, with a progress bar.")] = False,
            idempotency_key: Annotated[str | None, typer.Option(
                help="Submitting the same key again returns the same run.")] = None,
            timeout: Annotated[float | None, typer.Option(help="Seconds to wait.")] = None,
            as_json: JsonOpt = False) -> None:
    """Submit a run of DAG_ID (exit 1 if --wait and the run failed)."""
    with _client() as client:
        run_id = client.submit(dag_id, _parse_params(param), idempotency_key=idempotency_key)
        if not wait:
            _dump({"run_id": run_id}) if as_json else out.print(run_id)
            return
        run = _wait_with_progress(client, run_id, timeout, quiet=as_json)
        _show(run, as_json)
        if run.state != RunState.SUCCESS:
            raise typer.Exit(1)


def _wait_with_progress(client: Any, run_id: str, timeout: float | None,
                        quiet: bool = False) -> records.Run:
    if quiet or not err.is_terminal:
        return client.wait(run_id, timeout)  # type: ignore[no-any-return]
    with Progress(TextColumn("run {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        handle = bar.add_task(run_id[:12], total=None)

        def update(counts: dict[TaskState, int], total: int) -> None:
            done = sum(n for s, n in counts.items() if s in FINISHED_TASK)
            bar.update(handle, completed=done, total=total)

        return client.wait(run_id, timeout, on_progress=update)  # type: ignore[no-any-return]


_STYLE = {"success": "green", "failed": "red", "upstream_failed": "yellow", "running": "cyan"}


def _show(run: records.Run, as_json: bool) -> None:
    if as_json:
        _dump(run.model_dump(mode="json"))
        return
    out.print(f"run [bold]{run.id}[/bold]  dag {run.dag_id}  "
              f"[{_STYLE.get(run.state, 'white')}]{run.state}[/]")
    table = Table("task", "state", "attempts", "duration", "worker", "result / error")
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    # In the order they ran (tasks that never started last), as a reader follows a run;
    # a mapped task's instances right after it, in item order.
    def order(t: records.TaskInstance) -> tuple[dt.datetime, str, int]:
        head = run.tasks.get(t.map_parent or t.task_id, t)
        return head.started_at or never, head.task_id, -1 if t.map_index is None else t.map_index

    for t in sorted(run.tasks.values(), key=order):
        detail = t.error if t.error else json.dumps(t.result, default=str)
        dur = f"{t.duration_s:.3f}s" if t.duration_s is not None else ""
        table.add_row(t.task_id, f"[{_STYLE.get(t.state, 'white')}]{t.state}[/]",
                      str(len(t.attempts)), dur, t.worker or "", (detail or "")[:80])
    out.print(table)


@app.command("cancel")
def cancel_cmd(run_id: str) -> None:
    """Cancel a running run: nothing more starts, running tasks are terminated."""
    with _client() as client:
        client.cancel(run_id)
    out.print(f"cancelled run {run_id}")


@app.command("rerun")
def rerun_cmd(run_id: str,
              from_task: Annotated[str | None, typer.Option(
                  "--from", help="Rerun this task and everything downstream of it.")] = None,
              wait: Annotated[bool, typer.Option(
                  "--wait", help="Wait, with a progress bar.")] = False,
              timeout: Annotated[float | None, typer.Option(help="Seconds to wait.")] = None,
              as_json: JsonOpt = False) -> None:
    """Continue a finished run: rerun what failed (or --from a task), keep the rest."""
    with _client() as client:
        reset = client.rerun(run_id, from_task=from_task)
        if not wait:
            if as_json:
                _dump({"run_id": run_id, "rerun": reset})
            else:
                out.print(f"rerunning {', '.join(reset)} of run {run_id}")
            return
        run = _wait_with_progress(client, run_id, timeout, quiet=as_json)
        _show(run, as_json)
        if run.state != RunState.SUCCESS:
            raise typer.Exit(1)


@runs_app.command("list")
def runs_list(dag: Annotated[str | None, typer.Option(help="Only this DAG.")] = None,
              state: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
              limit: int = 20, as_json: JsonOpt = False) -> None:
    """List recent runs, newest first."""
    with _client() as client:
        found = client.runs(dag_id=dag, state=state, limit=limit)
    if as_json:
        _dump([r.model_dump(mode="json") for r in found])
        return
    table = Table("run", "dag", "state", "tasks", "created", "finished")
    for r in found:
        table.add_row(r.id, r.dag_id, f"[{_STYLE.get(r.state, 'white')}]{r.state}[/]",
                      str(r.total_tasks), f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                      f"{r.finished_at:%H:%M:%S}" if r.finished_at else "")
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: str, as_json: JsonOpt = False) -> None:
    """Show a run with every task, its attempts and results."""
    with _client() as client:
        _show(client.get_run(run_id), as_json)


@app.command("worker")
def worker_cmd(queues: Annotated[str | None, typer.Option(
                   help="Comma-separated queues to consume (default: ORCH_DEFAULT_QUEUE).")] = None,
               concurrency: Annotated[int | None, typer.Option(
                   help="Pool processes (default: ORCH_WORKER_CONCURRENCY or CPU count).")] = None,
               hostname: Annotated[str | None, typer.Option(help="Celery node name.")] = None,
               loglevel: str = "INFO") -> None:
    """Run a Celery worker for every DAG in ORCH_DAGS_PATH (needs ORCH_BROKER_URL)."""
    from workers.app import create_app

    settings = Settings()
    celery_app = create_app(settings)
    argv = ["worker", f"--loglevel={loglevel}", "--pool=prefork", "--without-mingle",
            "--without-gossip", f"--hostname={hostname or f'orch-{os.getpid()}@%h'}",
            f"--queues={queues or settings.default_queue}"]
    n = concurrency or settings.worker_concurrency
    if n:
        argv.append(f"--concurrency={n}")
    celery_app.worker_main(argv)


@app.command("coordinator")
def coordinator_cmd() -> None:
    """Run the coordinator: the reconciler resends work the database says is stuck
    (lost messages, lost workers). Several may run at once. Stops on SIGTERM or Ctrl-C."""
    from orchestrator.coordinator import reconciler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reconciler.run_forever(Settings(), stop)


@app.command("up")
def up_cmd(workers: int = 1, concurrency: int = 2,
           flower: Annotated[bool, typer.Option(help="Start Flower on 127.0.0.1.")] = True,
           ) -> None:
    """Start the local stack (embedded broker unless ORCH_BROKER_URL, workers, Flower)
    until Ctrl-C."""
    import time

    from orchestrator.devstack.stack import LocalStack

    settings = Settings()
    with LocalStack(settings, workers=workers, concurrency=concurrency, flower=flower,
                    coordinator=True) as s:
        out.print(f"broker   {s.settings.broker_url}")
        out.print(f"database {settings.database_url}")
        out.print(f"workers  {workers} x {concurrency} processes, and a coordinator")
        if flower:
            out.print(f"flower   http://127.0.0.1:{settings.flower_port}  "
                      f"(user {settings.flower_user}, password {s.flower_password})")
        out.print(f"submit with: ORCH_BROKER_URL={s.settings.broker_url} orchestrator run DAG_ID")
        out.print("Ctrl-C stops everything.")
        try:
            while all(w.proc.poll() is None for w in s.workers):
                time.sleep(0.5)
            err.print("[red]a worker exited; stopping[/red]")
            raise typer.Exit(1)
        except KeyboardInterrupt:
            out.print("stopping")


@app.command("quickstart")
def quickstart_cmd(dag_id: Annotated[str, typer.Argument()] = "example",
                   param: ParamOpt = None, concurrency: int = 2,
                   timeout: float = 120.0) -> None:
    """Run one DAG end to end on a throwaway local stack, show the result, stop
    everything (what `make run` does). Exit 1 if the run failed."""
    from orchestrator.client import Client
    from orchestrator.devstack.stack import LocalStack

    settings = Settings()
    params = _parse_params(param)
    with Client(settings) as probe:
        probe.dag(dag_id)  # a typo fails here, before any process starts
    with LocalStack(settings, concurrency=concurrency) as s, Client(s.settings) as client:
        out.print(f"broker {s.settings.broker_url}, database {settings.database_url}, "
                  f"1 worker x {concurrency}")
        run_id = client.submit(dag_id, params)
        run = _wait_with_progress(client, run_id, timeout)
        _show(run, as_json=False)
    if run.state != RunState.SUCCESS:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except errors.OrchestratorError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
