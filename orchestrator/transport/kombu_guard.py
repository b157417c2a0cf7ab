"""A guard around kombu 5.7's Redis transport, so a worker outlives a broker restart.

When the connection to Redis drops while a worker holds unacknowledged messages (its
running tasks: they are acked late), the channels of the dead connection are closed and
their ``connection`` (or its client) becomes None. Whatever then touches the broker through one of
them (giving the unacked messages back on the way out; acking a task that finished after
the reconnect, on the channel it came from) asks that None for its address and raises
``AttributeError``. Celery and kombu handle connection errors there, not that, so it is
an "Unrecoverable error" and the worker process exits instead of reconnecting (seen with
any worker that has a free pool slot when the broker goes away).

The guard makes such a channel raise the connection error it means. Nothing is lost by
it: an unacked message left behind stays in the broker's unacked set, which kombu
restores after the visibility timeout (its redelivery is refused as a duplicate by the
attempt's claim), and the reconciler resends what a broker that kept nothing lost.
"""

from __future__ import annotations

from typing import Any

_GUARDED = "_orchestrator_guarded"


def install() -> None:
    """Guard ``kombu.transport.redis.Channel._connparams`` (once per process)."""
    import redis
    from kombu.transport import redis as transport

    original: Any = getattr(transport.Channel, "_connparams", None)
    if original is None or getattr(original, _GUARDED, False):
        return  # another kombu than the one this guards (or guarded already)

    def connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError(
                "this channel's broker connection is closed")
        return original(self, asynchronous=asynchronous)

    setattr(connparams, _GUARDED, True)
    setattr(transport.Channel, "_connparams", connparams)  # noqa: B010
