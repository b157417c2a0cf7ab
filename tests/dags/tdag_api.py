"""DAGs of the REST API tests: ids of their own, so their runs are theirs alone."""

from __future__ import annotations

import os
import sys

from _support import mark, record, wait_gate

from orchestrator import dag, task


@task
def chatty(lines: int) -> int:
    record()
    for i in range(lines):
        print(f"before the gate {i}")
    sys.stdout.flush()
    mark("printed")
    wait_gate("go")  # the test reads and follows the log while the attempt runs
    print("after the gate", file=sys.stderr)
    return lines


@dag(id="api_logs")
def api_logs(lines: int = 3) -> None:
    chatty(lines)


@task
def api_step(x: int = 0) -> int:
    return x + 1


@dag(id="api_quick")
def api_quick(n: int = 1, label: str = "") -> None:
    api_step(n)


@task
def leaky() -> None:
    # the kind of error that quotes a setting's secret (a connection string, a key)
    raise RuntimeError(f"cannot sign with {os.environ.get('ORCH_SIGNING_KEY', '')}")


@dag(id="api_leaky")
def api_leaky() -> None:
    leaky()
