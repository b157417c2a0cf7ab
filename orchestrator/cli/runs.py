"""``orchestrator run``, ``runs list|show``, ``cancel``, ``rerun``."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli import render
from orchestrator.cli.common import (
    DagIdArg,
    JsonOpt,
    ParamOpt,
    RunIdArg,
    TimeoutOpt,
    WaitOpt,
    a_key,
    an_id,
    client,
    parse_params,
)
from orchestrator.model.states import RunState

runs_app = typer.Typer(no_args_is_help=True, help="Inspect runs.")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("run")(run_cmd)
    app.command("cancel")(cancel_cmd)
    app.command("rerun")(rerun_cmd)


def run_cmd(dag_id: DagIdArg, param: ParamOpt = None, wait: WaitOpt = False,
            idempotency_key: Annotated[str | None, typer.Option(
                help="Submitting the same key (and params) again returns the same run.",
                callback=a_key)] = None,
            timeout: TimeoutOpt = None, as_json: JsonOpt = False) -> None:
    """Submit a run of DAG_ID (exit 1 if --wait and the run failed)."""
    with client() as c:
        sub = c.submit_run(dag_id, parse_params(param), idempotency_key=idempotency_key)
        if not sub.sent:
            render.err.print(f"run {sub.run_id} is accepted, but the broker went away before "
                             "its first tasks were sent: the coordinator sends them as soon as "
                             "the broker is back")
        elif not sub.created:
            render.err.print(f"idempotency key {idempotency_key!r} already made run "
                             f"{sub.run_id}: nothing new was submitted")
        if not wait:
            render.dump({"run_id": sub.run_id}) if as_json else render.out.print(sub.run_id)
            return
        r = render.with_progress(c.wait, sub.run_id, timeout, quiet=as_json)
        render.run(r, as_json)
        if r.state != RunState.SUCCESS:
            raise typer.Exit(1)


def cancel_cmd(run_id: RunIdArg) -> None:
    """Cancel a running run: nothing more starts, running tasks are terminated."""
    with client() as c:
        full = c.resolve(run_id)
        c.cancel(full)
    render.out.print(f"cancelled run {full}")


def rerun_cmd(run_id: RunIdArg,
              from_task: Annotated[str | None, typer.Option(
                  "--from", help="Rerun this task and everything downstream of it.",
                  callback=an_id)] = None,
              wait: WaitOpt = False, timeout: TimeoutOpt = None, as_json: JsonOpt = False) -> None:
    """Continue a finished run: rerun what failed (or --from a task), keep the rest."""
    with client() as c:
        full = c.resolve(run_id)
        reset = c.rerun(full, from_task=from_task)
        if not wait:
            if as_json:
                render.dump({"run_id": full, "rerun": reset})
            else:
                render.out.print(f"rerunning {', '.join(reset)} of run {full}")
            return
        r = render.with_progress(c.wait, full, timeout, quiet=as_json)
        render.run(r, as_json)
        if r.state != RunState.SUCCESS:
            raise typer.Exit(1)


@runs_app.command("list")
def runs_list(dag: Annotated[str | None, typer.Option(help="Only this DAG.",
                                                     callback=an_id)] = None,
              state: Annotated[RunState | None, typer.Option(
                  help="Only runs in this state.", case_sensitive=False)] = None,
              limit: Annotated[int, typer.Option(min=1, max=1000,
                                                 help="At most this many runs.")] = 20,
              as_json: JsonOpt = False) -> None:
    """List recent runs, newest first."""
    with client() as c:
        found = c.runs(dag_id=dag, state=state.value if state else None, limit=limit)
    if as_json:
        render.dump([r.model_dump(mode="json") for r in found])
    else:
        render.runs(found)


@runs_app.command("show")
def runs_show(run_id: RunIdArg, as_json: JsonOpt = False) -> None:
    """Show a run with every task, its attempts and results."""
    with client() as c:
        render.run(c.get_run(c.resolve(run_id)), as_json)
