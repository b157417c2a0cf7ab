"""DAGs for the alert fault tests (tests/fault/test_alert_faults.py): each alerts one
webhook whose address and signing secret the coordinator reads from its environment
(AFAULT_HOOK_URL, AFAULT_HOOK_SECRET), so only that test's coordinators can deliver."""

from __future__ import annotations

from _support import record, wait_gate

from orchestrator import context, dag, task

HOOK = {"url": {"env": "AFAULT_HOOK_URL"}, "secret": {"env": "AFAULT_HOOK_SECRET"}}
FAILED = {"on": ["task_failed", "run_failed"], "webhook": HOOK}
VICTIM_QUEUE = "afault_victim"
"""Only the worker a test means to SIGKILL listens here."""


@task(retries=1, retry_backoff=0.05, retry_jitter=False)
def flaky() -> None:
    """Fails each attempt, once the test opens the attempt's gate (go1, go2)."""
    record()
    wait_gate(f"go{context().attempt}")
    raise ValueError("afault: it failed, once per attempt")


@task
def tracked(upstream: object = None) -> None:
    record()


@dag(notify=[{"on": ["task_retried", "task_failed", "run_failed"], "webhook": HOOK}])
def afault_duplicated() -> None:
    tracked.override(task_id="after")(flaky())


@task(timeout=4, queue=VICTIM_QUEUE)
def outlived() -> None:
    """Waits for a gate nobody opens: its worker is SIGKILLed before its timeout."""
    record()
    wait_gate("never")


@dag(notify=[FAILED])
def afault_timed_out() -> None:
    outlived()


@task(retries=5, queue=VICTIM_QUEUE)
def held() -> None:
    """Waits for a gate nobody opens: every worker that runs it is SIGKILLed."""
    record()
    wait_gate("never")


@dag(notify=[FAILED])
def afault_worker_lost() -> None:
    held()


@task
def fails_at_once() -> None:
    raise RuntimeError("afault: failed at once")


@dag(notify=[FAILED])
def afault_fails() -> None:
    fails_at_once()


@dag(notify=[{"on": ["run_failed"], "webhook": HOOK}])
def afault_one_alert() -> None:
    fails_at_once()
