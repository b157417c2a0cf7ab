"""Trigger rules decide from counts of finished, failed and skipped parents (Airflow's)."""

from __future__ import annotations

import pytest

from orchestrator.model.triggers import Decision, TriggerRule, decide

R, W, S, U = Decision.RUN, Decision.WAIT, Decision.SKIP, Decision.UPSTREAM_FAILED

# (rule, parents, done, failed, skipped) -> decision
CASES = [
    (TriggerRule.ALL_SUCCESS, 2, 2, 0, 0, R),
    (TriggerRule.ALL_SUCCESS, 2, 1, 0, 0, W),
    (TriggerRule.ALL_SUCCESS, 2, 1, 1, 0, U),   # decided before the other parent ends
    (TriggerRule.ALL_SUCCESS, 2, 1, 0, 1, S),
    (TriggerRule.ALL_FAILED, 2, 2, 2, 0, R),
    (TriggerRule.ALL_FAILED, 2, 1, 0, 0, S),    # one success settles it
    (TriggerRule.ALL_FAILED, 2, 1, 1, 0, W),
    (TriggerRule.ALL_DONE, 3, 3, 1, 1, R),
    (TriggerRule.ALL_DONE, 3, 2, 1, 1, W),
    (TriggerRule.ONE_SUCCESS, 3, 1, 0, 0, R),   # does not wait for the others
    (TriggerRule.ONE_SUCCESS, 2, 2, 1, 1, U),
    (TriggerRule.ONE_SUCCESS, 2, 2, 0, 2, S),
    (TriggerRule.ONE_FAILED, 3, 1, 1, 0, R),
    (TriggerRule.ONE_FAILED, 2, 2, 0, 0, S),
    (TriggerRule.ONE_FAILED, 2, 1, 0, 0, W),
    (TriggerRule.NONE_FAILED, 2, 2, 0, 1, R),
    (TriggerRule.NONE_FAILED, 2, 1, 1, 0, U),
    (TriggerRule.NONE_SKIPPED, 2, 2, 1, 0, R),
    (TriggerRule.NONE_SKIPPED, 2, 1, 0, 1, S),
    (TriggerRule.ALWAYS, 2, 0, 0, 0, R),
    (TriggerRule.ALL_SUCCESS, 0, 0, 0, 0, R),   # a root
]


@pytest.mark.parametrize(("rule", "parents", "done", "failed", "skipped", "want"), CASES)
def test_decide(rule: TriggerRule, parents: int, done: int, failed: int, skipped: int,
                want: Decision) -> None:
    assert decide(rule, parents, done, failed, skipped) == want


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_every_rule_decides_once_every_parent_finished(rule: TriggerRule) -> None:
    for failed in range(3):
        for skipped in range(3 - failed):
            assert decide(rule, 2, 2, failed, skipped) != Decision.WAIT
