"""What the recording hook must have seen of a finished run: each transition the
database holds, reported once, by whichever process made it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.model import records
from orchestrator.model.states import AttemptOutcome


def queued_as_expected(t: records.TaskInstance) -> list[tuple[int, str]]:
    """(attempt, reason) of each time the task was queued other than by a resend."""
    if not t.attempts:
        return [(1, "ready")] if t.map_count is not None else []
    out = []
    for i, a in enumerate(t.attempts):
        if i == 0:
            out.append((a.attempt, "ready"))
        elif t.attempts[i - 1].outcome != AttemptOutcome.LOST:  # a takeover is not queued
            out.append((a.attempt, "retry"))
    return out


def check_each_transition_once(run: records.Run, events: list[dict[str, Any]]) -> None:
    def of(hook: str) -> list[dict[str, Any]]:
        return [e for e in events if e["hook"] == hook]

    assert all(e["run_id"] == run.id and e["dag_id"] == run.dag_id for e in events)
    assert [e["state"] for e in of("run_started")] == ["running"]
    assert [e["state"] for e in of("run_finished")] == [run.state]
    attempts = {(t.task_id, a.attempt): a for t in run.tasks.values() for a in t.attempts}
    started = Counter((e["task_id"], e["attempt"]) for e in of("attempt_started"))
    assert started == Counter(list(attempts))  # each attempt started once, none unknown
    finished = Counter((e["task_id"], e["attempt"], e["outcome"], e["error_type"])
                       for e in of("attempt_finished"))
    assert finished == Counter((k[0], k[1], a.outcome, a.error_type)
                               for k, a in attempts.items())
    assert sorted((e["task_id"], e["state"]) for e in of("task_finished")) == sorted(
        (t.task_id, t.state) for t in run.tasks.values())
    queued = [e for e in of("task_queued") if e["reason"] != "resend"]
    for t in run.tasks.values():
        got = [(e["attempt"], e["reason"]) for e in queued if e["task_id"] == t.task_id]
        assert sorted(got) == sorted(queued_as_expected(t)), t.task_id
    assert {e["task_id"] for e in events if e.get("task_id")} <= set(run.tasks)
