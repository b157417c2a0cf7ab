"""Helpers for test DAGs: an execution ledger and gates the tests open.

Both live in the folder named by ORCH_TEST_LEDGER_DIR, one file per run, so runs of
different tests never see each other's entries.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from orchestrator import context

GATE_TIMEOUT_S = 60.0


def _dir() -> Path:
    return Path(os.environ["ORCH_TEST_LEDGER_DIR"])


def record() -> None:
    """Append (run, task, attempt, pid) for this execution to the run's ledger."""
    ctx = context()
    line = json.dumps({"run": ctx.run_id, "task": ctx.task_id, "attempt": ctx.attempt,
                       "pid": os.getpid()})
    fd = os.open(_dir() / f"{ctx.run_id}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} never appeared")
        time.sleep(0.02)


def wait_gate(name: str) -> None:
    """Block until the test opens gate ``name`` for this run (bounded)."""
    _wait_for(_dir() / f"{context().run_id}.{name}.gate", f"gate {name!r}")


def mark(name: str) -> None:
    (_dir() / f"{context().run_id}.{name}.mark").touch()


def wait_mark(name: str) -> None:
    _wait_for(_dir() / f"{context().run_id}.{name}.mark", f"mark {name!r}")


def gate_open(name: str) -> bool:
    return (_dir() / f"{context().run_id}.{name}.gate").exists()
