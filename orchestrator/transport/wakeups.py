"""Run-finished notifications through Redis pub/sub, so waiting clients wake at once.

A notification is a shortcut, not the source of truth: a waiter that misses one finds
the run's end in the database on its next check.
"""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

import redis

CHANNEL = "orchestrator:run-finished"
ALERTS = "orchestrator:alerts"
"""Published after a commit that wrote notifications: notifiers deliver them at once."""


@functools.lru_cache(maxsize=8)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def publish(broker_url: str, run_id: str, state: str) -> None:
    with contextlib.suppress(redis.RedisError):
        _redis(broker_url).publish(CHANNEL, json.dumps({"run": run_id, "state": state}))


def alerts_written(broker_url: str) -> None:
    with contextlib.suppress(redis.RedisError):
        _redis(broker_url).publish(ALERTS, b"1")


def subscribe(broker_url: str, channel: str = CHANNEL) -> Any:
    """A pub/sub subscription to run-finished events, or another ``channel``
    (``get_message(timeout=...)``)."""
    # A pool of our own: a client made by from_url closes its pool when it is collected,
    # which dropped the subscription until the first get_message made it again, missing
    # whatever was published in between.
    pool = redis.ConnectionPool.from_url(broker_url, socket_connect_timeout=5)
    ps = redis.Redis(connection_pool=pool).pubsub(  # type: ignore[no-untyped-call]
        ignore_subscribe_messages=True)
    ps.subscribe(channel)
    return ps
