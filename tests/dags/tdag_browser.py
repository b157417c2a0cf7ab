"""DAGs the browser tier (tests/browser) drives through the run view.

Tasks that must stay running while the page is watched wait on a gate the test opens
(tests.support.Ledger.open_gate), so no test depends on how fast a worker is.
"""

from __future__ import annotations

import logging

from _support import wait_gate

from orchestrator import dag, task

log = logging.getLogger("tdag_browser")


@task
def start() -> int:
    # Held until the test has the run page open, so its turning green is seen live.
    wait_gate("go")
    return 2


@task
def begin() -> int:
    return 2


@task
def branch(x: int, k: int) -> int:
    return x * k


@task
def join(a: int, b: int) -> int:
    return a + b


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dag(id="browser_ok")
def browser_ok(n: int = 3) -> None:
    """start (gated) fans out to left and right, joined by join; a mapped square."""
    s = start()
    join(branch.override(task_id="left")(s, 3), branch.override(task_id="right")(s, 5))
    total(square.map(numbers(n)))


@dag(id="browser_grid")
def browser_grid(n: int = 3) -> None:
    """browser_ok without the gate: runs end on their own."""
    s = begin()
    join(branch.override(task_id="left")(s, 3), branch.override(task_id="right")(s, 5))
    total(square.map(numbers(n)))


@task
def explode() -> None:
    print("browser: preparing the fuse")
    log.warning("browser: fuse lit")
    raise ValueError("browser: the fuse blew")


@dag(id="browser_fail")
def browser_fail() -> None:
    explode()


@task
def configured(count: int, mode: str) -> str:
    return f"{mode} x{count}"


@dag(id="browser_params")
def browser_params(count: int = 2, mode: str = "fast") -> None:
    configured(count, mode)


@task
def hold() -> str:
    # Stays running until the test cancels the run (or opens the gate to clean up).
    wait_gate("release")
    return "released"


@dag(id="browser_slow")
def browser_slow() -> None:
    hold()


@task
def talk() -> str:
    print("browser: first line", flush=True)
    wait_gate("more")
    print("browser: second line", flush=True)
    wait_gate("end")
    return "said"


@dag(id="browser_follow")
def browser_follow() -> None:
    talk()
