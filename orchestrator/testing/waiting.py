"""Waiting on a condition with a deadline: how a test waits for processes, never sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from orchestrator import errors

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 60.0, what: str = "a condition",
               interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something truthy, and return that; raise
    :class:`~orchestrator.errors.WaitTimeout` (naming ``what``) once ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise errors.WaitTimeout(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
