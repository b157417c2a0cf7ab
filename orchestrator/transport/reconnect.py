"""Forgetting this process's broker connections after the broker restarted.

kombu keeps connections and producers in pools global to the process (every Celery app
of it draws from them); once the broker restarted, each pooled connection is dead and
fails the next call made on it ("Connection closed by server"), one call per connection.
"""

from __future__ import annotations

from typing import Any

from kombu import pools


def forget_connections() -> None:
    """Close and drop every pooled broker connection of this process: the next call
    opens a new one."""
    reset: Any = pools.reset  # kombu's own annotations leave it untyped
    reset()
