"""DAGs the integration and fault tests run."""

from __future__ import annotations

import os
import signal
import socket
import time

from _support import gate_open, mark, record, wait_gate, wait_mark

from orchestrator import context, dag, task


@task
def inc(x: int) -> int:
    record()
    return x + 1


@dag(id="chain20")
def chain20(start: int = 0) -> None:
    v = inc(start)
    for _ in range(19):
        v = inc(v)


@task
def emit() -> int:
    return 1


@task
def work(base: int, i: int) -> int:
    return base + i


@task
def collect(*parts: int) -> dict[str, int]:
    record()
    return {"n": len(parts), "sum": sum(parts), "first": parts[0], "last": parts[-1]}


@dag(id="wide500")
def wide500() -> None:
    src = emit()
    collect(*[work(src, i) for i in range(500)])


@task
def node(*ups: int) -> int:
    return sum(ups) % 1_000_003 + 1


@dag(id="lattice10")
def lattice10() -> None:
    layer = [node.override(task_id=f"n0_{j}")() for j in range(10)]
    for i in range(1, 10):
        layer = [node.override(task_id=f"n{i}_{j}")(*layer) for j in range(10)]


@task
def quick() -> str:
    return "ok"


@task
def slow_join(a: str, b: str) -> str:
    wait_gate("c")
    return a + b


@dag(id="nshape")
def nshape() -> None:
    """a -> c, b -> c, b -> d; c waits for a gate the test opens once d is done."""
    a = quick.override(task_id="a")()
    b = quick.override(task_id="b")()
    slow_join.override(task_id="c")(a, b)
    quick.override(task_id="d")() << b


@task(retries=2, retry_backoff=0.05, retry_backoff_max=0.1)
def flaky() -> int:
    record()
    if context().attempt < 2:
        raise RuntimeError("first attempt fails on purpose")
    return context().attempt


@dag(id="flaky")
def flaky_dag() -> None:
    inc(flaky())


@task(retries=1, retry_backoff=0.05)
def boom(x: str) -> str:
    record()
    raise ValueError(f"boom {x}")


@dag(id="failing")
def failing() -> None:
    """root -> boom -> down -> down2, and root -> side -> side2 independent of boom."""
    root = quick.override(task_id="root")()
    down = quick.override(task_id="down")()
    down << boom(root)
    quick.override(task_id="down2")() << down
    side = quick.override(task_id="side")()
    side << root
    quick.override(task_id="side2")() << side


@task(timeout=1)
def sleepy() -> None:
    time.sleep(60)


@dag(id="timeout")
def timeout_dag() -> None:
    sleepy()


class SlowToDescribe(Exception):
    """Its message takes longer to read than the task's timeout leaves: the soft limit
    fires while the worker reads it, after the body has ended."""

    def __str__(self) -> str:
        time.sleep(3)
        return "described too late"


@task(timeout=1)
def fails_at_its_deadline() -> None:
    raise SlowToDescribe()


@dag(id="late_failure")
def late_failure() -> None:
    fails_at_its_deadline()


@task
def rendezvous(me: str, other: str) -> str:
    """Finishes only while the other task runs at the same time, on another process."""
    mark(me)
    wait_mark(other)

    return f"{socket.gethostname()}:{context().task_id}"


@dag(id="pair")
def pair() -> None:
    rendezvous.override(task_id="t1")("t1", "t2")
    rendezvous.override(task_id="t2")("t2", "t1")


@task
def gated() -> str:
    record()
    wait_gate("go")
    return "passed"


@task
def tracked(x: str = "") -> str:
    record()
    return x or "done"


@dag(id="killme")
def killme() -> None:
    first = tracked.override(task_id="first")()
    g = gated()
    g << first
    tracked.override(task_id="last")(g)


@task
def greet(name: str, times: int) -> str:
    return " ".join([f"hello {name}"] * times)


@dag(id="typed")
def typed(name: str, times: int = 1, tags: list[str] | None = None) -> None:
    greet(name, times)


@task
def not_json() -> set[int]:
    return {1, 2}


@dag(id="badresult")
def badresult() -> None:
    not_json()


@task
def needs_fix() -> str:
    record()
    if not gate_open("fix"):
        raise RuntimeError("not fixed yet")
    return "fixed"


@dag(id="fixable")
def fixable() -> None:
    """a -> needs_fix -> b, and a -> side; needs_fix fails until the test opens a gate."""
    a = tracked.override(task_id="a")()
    fix = needs_fix()
    fix << a
    tracked.override(task_id="b")(fix)
    tracked.override(task_id="side")() << a


@dag(id="gateonly")
def gateonly() -> None:
    gated()


@task(retries=5)
def suicidal() -> None:
    """Kills the pool process running it, on every attempt."""
    record()
    os.kill(os.getpid(), signal.SIGKILL)


@dag(id="suicidal")
def suicidal_dag() -> None:
    tracked.override(task_id="after")() << suicidal()


@task
def parent(n: int) -> int:
    record()
    wait_gate("go")
    return n


@task
def join_all(*values: int) -> list[int]:
    record()
    return list(values)


@dag(id="fanin3")
def fanin3() -> None:
    join_all(*[parent.override(task_id=f"p{i}")(i) for i in range(3)])


@task
def broken_now() -> None:
    raise ValueError("broken on purpose")


@dag(id="rules")
def rules() -> None:
    """One parent succeeds, one fails; a child per trigger rule."""
    good = quick.override(task_id="good")()
    broken = broken_now.override(task_id="broken")()
    for rule in ("all_success", "all_failed", "all_done", "one_success", "one_failed",
                 "none_failed", "none_skipped"):
        child = quick.override(task_id=f"r_{rule}", trigger_rule=rule)()
        child << ([broken] if rule == "all_failed" else [good, broken])


@dag(id="handled")
def handled() -> None:
    """A failure handled downstream: the leaf succeeds, so the run succeeds (Airflow)."""
    broken = broken_now.override(task_id="broken")()
    quick.override(task_id="cleanup", trigger_rule="all_done")() << broken


@task(branch=True)
def choose(pick: str) -> str:
    return pick


@dag(id="branchy")
def branchy(pick: str = "left") -> None:
    c = choose(pick)
    left = quick.override(task_id="left")()
    right = quick.override(task_id="right")()
    right_child = quick.override(task_id="right_child")()
    left << c
    right << c
    right_child << right
    quick.override(task_id="join", trigger_rule="none_failed")() << [left, right_child]


@dag(id="early")
def early() -> None:
    """first_one runs once 'fast' succeeds, while 'slow' still waits for its gate."""
    fast = quick.override(task_id="fast")()
    slow = gated.override(task_id="slow")()
    quick.override(task_id="first_one", trigger_rule="one_success")() << [fast, slow]


@dag(id="slowrun", timeout=2)
def slowrun() -> None:
    """Its only task waits for a gate nobody opens: the run times out."""
    tracked.override(task_id="after")(gated())


@task(timeout=5)
def hang() -> None:
    record()
    wait_gate("go")


@dag(id="hangs")
def hangs() -> None:
    quick.override(task_id="after_hang")() << hang()


@task(retries=1, retry_backoff=3.0, retry_jitter=False)
def fails_first() -> str:
    record()
    if context().attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "second time lucky"


@dag(id="slowretry")
def slowretry() -> None:
    """Its retry waits 3 s, longer than the test stack's requeue interval."""
    fails_first()
