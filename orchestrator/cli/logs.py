"""``orchestrator logs RUN_ID TASK_ID [--attempt N] [--follow]``: an attempt's output."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli.common import RunIdArg, an_id, client
from orchestrator.model.states import AttemptOutcome

if TYPE_CHECKING:
    from orchestrator.client import Client

FOLLOW_POLL_S = 0.2
"""How often --follow reads the store: the same as workers flush."""
MAX_ATTEMPT = 1_000_000


def a_task_id(value: str) -> str:
    """A task id, or a mapped instance's (``square[3]``)."""
    base, sep, index = value.partition("[")
    if sep and not (index.endswith("]") and index[:-1].isdigit()
                    and len(index) <= len(str(MAX_ATTEMPT)) + 1):
        raise typer.BadParameter(f"{value[:60]!r} is not a task id: a mapped instance is "
                                 "name[index], e.g. square[3]")
    an_id(base)
    return value


TaskIdArg = Annotated[str, typer.Argument(
    help="A task id, or a mapped instance's, e.g. square[3].", callback=a_task_id)]


def register(app: typer.Typer) -> None:
    app.command("logs")(logs_cmd)


def logs_cmd(run_id: RunIdArg, task_id: TaskIdArg,
             attempt: Annotated[int | None, typer.Option(
                 min=1, max=MAX_ATTEMPT, help="This attempt (default: the latest).")] = None,
             follow: Annotated[bool, typer.Option(
                 "--follow", "-f", help="Print new output until the attempt ends.")] = False,
             ) -> None:
    """Print the output (stdout, stderr, logging) of a task's attempt, as stored."""
    with client() as c:
        full = c.resolve(run_id)
        try:
            if follow:
                _follow(c, full, task_id, attempt)
            else:
                _print_after(c, full, task_id, attempt, 0)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `| head` read what it wanted: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None


def _print_after(c: Client, run_id: str, task_id: str, attempt: int | None,
                 after: int) -> tuple[int, int]:
    """Print every chunk after ``after``; (the attempt, the last seq printed)."""
    while True:
        number, chunks = c.log_chunks(run_id, task_id, attempt, after=after)
        attempt = number
        for chunk in chunks:
            sys.stdout.write(chunk.data)  # as written: no markup, no colour
        sys.stdout.flush()
        if not chunks:
            return number, after
        after = chunks[-1].seq


def _follow(c: Client, run_id: str, task_id: str, attempt: int | None) -> None:
    after = 0
    while True:
        # The outcome first: once it is not running, the chunks read after it are all
        # there are (a worker writes its last flush before the outcome).
        attempt, outcome = c.attempt_outcome(run_id, task_id, attempt)
        attempt, after = _print_after(c, run_id, task_id, attempt, after)
        if outcome != AttemptOutcome.RUNNING:
            return
        time.sleep(FOLLOW_POLL_S)
