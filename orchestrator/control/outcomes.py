"""Sending what the state database decided: the one place that pairs the store with the
dispatcher, for the workers and the coordinator alike."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.model import plan, retries, spec
from orchestrator.store import Advance, Store
from orchestrator.transport import dispatch


class Sender:
    def __init__(self, store: Store, dispatcher: dispatch.Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher

    def send(self, dag: spec.DagSpec, p: plan.Plan, run_id: str,
             heads: Sequence[tuple[str, int]], countdown: float | None = None) -> None:
        """Send the segments starting at ``heads``; their chain links carry their own
        current attempts (a rerun may have moved them on)."""
        tails = [n for h, _ in heads for n in p.segment_from(h)[1:]]
        tail_attempts = self.store.attempts_of(run_id, tails) if tails else {}
        self.dispatcher.send(dag, p, run_id, heads, tail_attempts, countdown=countdown)

    def advance(self, dag: spec.DagSpec, p: plan.Plan, run_id: str,
                ready: Sequence[tuple[str, int]], adv: Advance) -> None:
        """Send what a recorded outcome made ready; announce the run's end if it ended."""
        if ready:
            self.send(dag, p, run_id, ready)
        if adv.run_state is not None:
            self.dispatcher.run_finished(run_id, adv.run_state)

    def after_failure(self, dag: spec.DagSpec, p: plan.Plan, run_id: str, task_id: str,
                      adv: Advance, *, used: int, max_attempts: int) -> float | None:
        """Follow a recorded failed attempt: schedule the retry it earned (returning its
        delay), or send what the task's failure made ready."""
        if adv.retry_attempt is None:
            self.advance(dag, p, run_id, adv.ready, adv)
            return None
        t = dag.task(task_id)
        # failures in this try: a rerun raised max_attempts by the attempts before it
        wait = retries.delay(t, max(1, used - (max_attempts - t.max_attempts)))
        self.send(dag, p, run_id, [(task_id, adv.retry_attempt)], countdown=wait)
        return wait
