"""Trigger rules: when a task with finished parents runs, is skipped, or cannot run.

Pure. The store calls :func:`decide` inside the transaction that records a parent's
outcome, with the child's counts of finished, failed and skipped parents; the first
decision that is not ``WAIT`` moves the child out of ``pending`` by compare-and-set, so
it is taken exactly once. Rules and outcomes follow Airflow's.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import Any

from orchestrator import errors


class TriggerRule(enum.StrEnum):
    ALL_SUCCESS = "all_success"
    """Every parent succeeded (default). A failed parent makes it upstream_failed, a
    skipped one makes it skipped."""
    ALL_FAILED = "all_failed"
    """Every parent failed or was upstream_failed."""
    ALL_DONE = "all_done"
    """Every parent finished, whatever the outcome."""
    ONE_SUCCESS = "one_success"
    """Runs as soon as one parent succeeded, without waiting for the others."""
    ONE_FAILED = "one_failed"
    """Runs as soon as one parent failed, without waiting for the others."""
    NONE_FAILED = "none_failed"
    """Every parent finished, none failed (skipped is fine)."""
    NONE_SKIPPED = "none_skipped"
    """Every parent finished, none was skipped."""
    ALWAYS = "always"
    """Runs at once, without waiting for its parents (their results are read if present)."""


class Decision(enum.StrEnum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


def decide(rule: TriggerRule, parents: int, done: int, failed: int,
           skipped: int) -> Decision:
    """``failed`` counts parents failed or upstream_failed; ``done`` every finished parent."""
    if parents == 0 or rule == TriggerRule.ALWAYS:
        return Decision.RUN
    succeeded = done - failed - skipped
    all_done = done >= parents
    early = _early(rule, succeeded, failed, skipped)
    if early is not None:
        return early
    if not all_done:
        return Decision.WAIT
    if rule in (TriggerRule.ONE_SUCCESS,):
        return Decision.UPSTREAM_FAILED if failed else Decision.SKIP
    if rule == TriggerRule.ONE_FAILED:
        return Decision.SKIP
    return Decision.RUN


def _early(rule: TriggerRule, succeeded: int, failed: int, skipped: int) -> Decision | None:
    """A decision some parents' outcomes settle before the rest finish."""
    if rule == TriggerRule.ALL_SUCCESS:
        if failed:
            return Decision.UPSTREAM_FAILED
        if skipped:
            return Decision.SKIP
    elif rule == TriggerRule.ALL_FAILED:
        if succeeded or skipped:
            return Decision.SKIP
    elif rule == TriggerRule.ONE_SUCCESS:
        if succeeded:
            return Decision.RUN
    elif rule == TriggerRule.ONE_FAILED:
        if failed:
            return Decision.RUN
    elif rule == TriggerRule.NONE_FAILED:
        if failed:
            return Decision.UPSTREAM_FAILED
    elif rule == TriggerRule.NONE_SKIPPED and skipped:
        return Decision.SKIP
    return None


def chosen_branches(result: Any, children: Collection[str]) -> frozenset[str]:
    """The children a branching task chose (its result: a task id or a list of them);
    BranchError if it names anything but its direct downstream tasks. Workers and
    ``Dag.test`` check it alike."""
    chosen = {result} if isinstance(result, str) else result
    if not isinstance(chosen, list | set | tuple | frozenset) or not all(
            isinstance(c, str) for c in chosen):
        raise errors.BranchError(f"a branch task returns a task id or a list of them, got "
                                 f"{result!r}")
    unknown = set(chosen) - set(children)
    if unknown:
        raise errors.BranchError(f"branch chose {sorted(unknown)}, which are not its direct "
                                 f"downstream tasks {list(children)}")
    return frozenset(chosen)
