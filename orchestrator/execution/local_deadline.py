"""A task body with a timeout, in this process (``Dag.test``): what Celery's soft time
limit is on a worker.

The body runs in a daemon thread, in a copy of the caller's context; when its deadline
passes the attempt fails with :class:`~orchestrator.errors.TaskTimeout` at once. Python
cannot kill a thread, so the body's thread is abandoned:

- a Python body is sent an asynchronous ``TaskTimeout``, which Python raises at the
  thread's next bytecode (as Celery's soft limit raises inside the body): a busy loop
  stops there, a blocking call (``time.sleep``, a socket read) only once it returns, and
  a body that catches the exception runs on, unwatched;
- a shell task's command (and whatever it started) is killed: every process of this
  user whose environment names this run, task and attempt (Linux's ``/proc``; where
  there is none, the command runs on).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import errors
from orchestrator.execution.task_context import TaskContext

_KILL_ROUNDS = 5
"""Passes over /proc: a command may start children while the previous pass kills it."""
_SHELL_JOIN_S = 5.0
"""How long the abandoned thread of a killed command gets to close its pipes."""


class _Body:
    """One attempt's body in its thread; ``finished`` and ``outcome`` change under
    ``lock``, so the deadline either sees the outcome or stops the body, never both."""

    def __init__(self, body: Callable[[], Any]) -> None:
        self.body = body
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.finished = False
        self.outcome: tuple[bool, Any] = (False, None)
        self.context = contextvars.copy_context()

    def __call__(self) -> None:
        # Everything is inside the outer try: a late asynchronous TaskTimeout can only be
        # delivered before `finished` is set (the deadline sends it under the lock, after
        # seeing it unset), so it never escapes to threading's excepthook.
        try:
            try:
                outcome: tuple[bool, Any] = (True, self.context.run(self.body))
            except BaseException as exc:  # the attempt's to report, whatever it is
                outcome = (False, exc)
            with self.lock:
                self.finished, self.outcome = True, outcome
        except BaseException:  # the TaskTimeout the deadline sent: the attempt is over
            pass
        finally:
            self.done.set()


def call_with_timeout(body: Callable[[], Any], timeout: float, ctx: TaskContext,
                      kind: str) -> Any:
    """``body()``'s result, or its exception; TaskTimeout once ``timeout`` seconds pass."""
    run = _Body(body)
    thread = threading.Thread(target=run, daemon=True,
                              name=f"orchestrator-test-{ctx.task_id}-{ctx.attempt}")
    thread.start()
    run.done.wait(timeout)
    with run.lock:
        if not run.finished:
            if kind == "shell":
                kill_commands(ctx)
            else:
                _interrupt(thread)
            timed_out = True
        else:
            timed_out = False
    if timed_out:
        if kind == "shell":
            thread.join(_SHELL_JOIN_S)
        raise errors.TaskTimeout(f"exceeded its timeout of {timeout} s")
    ok, value = run.outcome
    if not ok:
        raise value
    return value


def _interrupt(thread: threading.Thread) -> None:
    """Raise TaskTimeout in ``thread`` at its next bytecode."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(errors.TaskTimeout))


def kill_commands(ctx: TaskContext) -> int:
    """SIGKILL every process whose environment names this run, task and attempt (a shell
    task's command and its children get them from ``operators.shell_env``); returns how
    many were killed."""
    marks = {f"ORCH_RUN_ID={ctx.run_id}".encode(), f"ORCH_TASK_ID={ctx.task_id}".encode(),
             f"ORCH_ATTEMPT={ctx.attempt}".encode()}
    killed = 0
    for _ in range(_KILL_ROUNDS):
        found = [pid for pid in _processes() if marks <= _environment(pid)]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def _processes() -> list[int]:
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    me = os.getpid()
    return [int(p.name) for p in proc.iterdir() if p.name.isdigit() and int(p.name) != me]


def _environment(pid: int) -> set[bytes]:
    try:
        return set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:  # gone, or another user's
        return set()
