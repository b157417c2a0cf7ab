"""Retry delays: exponential backoff, capped, with jitter so retries do not stampede."""

from __future__ import annotations

import random

from orchestrator.model import spec


def delay(task: spec.TaskSpec, failed_attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before the next attempt, after ``failed_attempts`` failures (>= 1).

    ``retry_backoff * 2**(n-1)`` capped at ``retry_backoff_max``; with jitter, a uniform
    draw from the upper half of that, so the delay never collapses to zero."""
    base = min(task.retry_backoff_max, task.retry_backoff * 2.0 ** (failed_attempts - 1))
    if not task.retry_jitter or base == 0:
        return base
    return (rng or random).uniform(base / 2, base)


def next_delay(task: spec.TaskSpec, attempt: int, lost_attempts: int,
               max_attempts: int) -> float | None:
    """Seconds until the next attempt after ``attempt`` failed, or None if none is left.

    Lost attempts do not spend the user's retries; a rerun raised ``max_attempts`` by
    the attempts before it, so only this try's failures count toward the backoff."""
    used = attempt - lost_attempts
    if used >= max_attempts:
        return None
    return delay(task, max(1, used - (max_attempts - task.max_attempts)))
