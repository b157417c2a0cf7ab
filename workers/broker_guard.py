"""Bytes on the broker that are not a kombu message at all never stop the worker.

kombu's Redis channel parses what it pops (the JSON envelope, then the message built
from it) before any consumer sees it; a list item that is not an envelope raises out of
the event loop, and Celery exits ("Unrecoverable error"). The worker's app connects
through :class:`GuardedConnection`, whose channels drop such an item with one warning.
The item was already popped and never reached the unacknowledged set, so dropping it is
all there is to do. The transport is still the one the URL names (``redis://``,
``rediss://`` and its TLS defaults, sentinel): only its channel class is extended.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import redis.exceptions
from celery.app.amqp import AMQP
from kombu.connection import Connection

log = logging.getLogger(__name__)

MALFORMED = (ValueError, TypeError, LookupError, AttributeError, RecursionError,
             OverflowError, redis.exceptions.DataError)
"""What parsing an item that is not a message raises (``LookupError``: a missing key, an
unknown body encoding; ``DataError``: a delivery tag redis cannot store)."""


class _UncompressedMessage:
    """Mixed in before kombu's message: kombu decompresses a body as it builds the
    message, before any check could look at it, and a small body may expand without
    bound. We never compress, so a compressed message is not ours."""

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        headers = payload.get("headers") if isinstance(payload, dict) else None
        if isinstance(headers, dict) and "compression" in headers:
            raise ValueError("it is compressed, and we never compress")
        super().__init__(payload, channel, **kwargs)  # type: ignore[call-arg]


class _GuardedChannel:
    """Mixed in before kombu's Redis channel (``_brpop_read`` and
    ``_deliver_fanout_message`` are where it parses a queue item and a broadcast)."""

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except MALFORMED as exc:
            log.warning("dropped an item of a task queue that is not a message (%s: %s)",
                        type(exc).__name__, str(exc)[:120])
            return True

    def _deliver_fanout_message(self, message: Any, exchange: str) -> Any:
        try:
            return super()._deliver_fanout_message(message, exchange)  # type: ignore[misc]
        except MALFORMED as exc:
            log.warning("dropped a broadcast that is not a message (%s: %s)",
                        type(exc).__name__, str(exc)[:120])
            return True


@functools.cache
def _guarded(transport_cls: type) -> type:
    channel = getattr(transport_cls, "Channel", None)
    if channel is None or not hasattr(channel, "_brpop_read"):
        return transport_cls  # not Redis: nothing of ours to guard
    message = type(f"Uncompressed{channel.Message.__name__}",
                   (_UncompressedMessage, channel.Message), {})
    guarded_channel = type(f"Guarded{channel.__name__}", (_GuardedChannel, channel),
                           {"Message": message})
    return type(f"Guarded{transport_cls.__name__}", (transport_cls,),
                {"Channel": guarded_channel})


class GuardedConnection(Connection):
    def get_transport_cls(self) -> type:
        return _guarded(super().get_transport_cls())  # type: ignore[no-untyped-call]


class GuardedAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP with :class:`GuardedConnection`: ``Celery(amqp=...)``."""

    Connection = GuardedConnection
