"""DAGs the log tests run: output on every channel, retries, mapped instances, a gate,
a flood past the cap, secrets printed in every form, a worker killed mid-output."""

from __future__ import annotations

import base64
import logging
import os
import sys
import threading
from urllib.parse import quote, unquote, urlsplit

from _support import record, wait_gate

from orchestrator import context, dag, task

log = logging.getLogger("tdag.logs")


@task
def talker() -> str:
    print("out: hello from print")
    print("err: hello from stderr", file=sys.stderr)
    log.info("a record at info")
    log.warning("a record at warning")
    logging.getLogger("orchestrator.fake").warning("orchestrator's own: not the task's")
    logging.getLogger("celery.fake").warning("celery's own: not the task's")
    side = threading.Thread(target=lambda: print("out: from a thread the body started"))
    side.start()
    side.join()
    sys.stdout.write("a partial line at the end")
    return "talked"


@dag(id="logs_talk")
def logs_talk() -> None:
    talker()


@task
def quiet() -> str:
    return "quiet"


@dag(id="logs_quiet")
def logs_quiet() -> None:
    quiet()


@task(retries=2, retry_backoff=0.05, retry_backoff_max=0.1)
def retried() -> str:
    n = context().attempt
    print(f"attempt {n} says hello")
    if n < 2:
        raise RuntimeError(f"attempt {n} fails on purpose")
    return f"attempt {n}"


@dag(id="logs_retry")
def logs_retry() -> None:
    retried()


@task
def items(n: int) -> list[int]:
    return list(range(n))


@task
def shout(x: int) -> int:
    print(f"instance of item {x} at {context().task_id}")
    return x


@dag(id="logs_mapped")
def logs_mapped(n: int = 4) -> None:
    shout.map(items(n))


@task
def gated_talker() -> str:
    print("before the gate")
    record()
    wait_gate("go")
    print("after the gate")
    return "through"


@dag(id="logs_gate")
def logs_gate() -> None:
    gated_talker()


@task
def flood(lines: int = 2000) -> int:
    for i in range(lines):
        print(f"flood line {i:05d} " + "x" * 40)
    return lines


@dag(id="logs_flood")
def logs_flood(lines: int = 2000) -> None:
    flood(lines)


@task
def big_line(kib: int = 200) -> int:
    sys.stdout.write("y" * (kib * 1024) + "\n")
    return kib


@dag(id="logs_big_line")
def logs_big_line(kib: int = 200) -> None:
    big_line(kib)


def _secrets() -> list[str]:
    found = [os.environ.get("ORCH_SIGNING_KEY", ""), os.environ.get("ORCH_FLOWER_PASSWORD", "")]
    for name in ("ORCH_DATABASE_URL", "ORCH_BROKER_URL"):
        password = urlsplit(os.environ.get(name, "")).password
        if password:
            found += [password, unquote(password)]  # as in the URL, and as the server has it
    return [s for s in found if s]


@task
def leaker() -> int:
    secrets = _secrets()
    for name in ("ORCH_DATABASE_URL", "ORCH_BROKER_URL"):
        print(f"{name}={os.environ.get(name, '')}")
    for s in secrets:
        print(f"plain {s} quoted {quote(s, safe='')} lower {quote(s, safe='').lower()}")
        print(f"base64 {base64.b64encode(s.encode()).decode()}")
        print(f"basic {base64.b64encode(('admin:' + s).encode()).decode()}")
        print(f"stderr {s}", file=sys.stderr)
        log.warning("logged %s", s)
    return len(secrets)


@dag(id="logs_leak")
def logs_leak() -> None:
    leaker()


@task
def dies_talking() -> str:
    n = context().attempt
    print(f"attempt {n}: line before the kill")
    if n == 1:
        record()
        wait_gate("never")  # the test SIGKILLs this worker once the line is stored
    return f"survived at attempt {n}"


@dag(id="logs_killed")
def logs_killed() -> None:
    dies_talking()
