"""The raw-Celery baseline: the same workloads as plain Celery canvases.

Run as a real worker:
``python -m celery -A benchmarks.celery_baseline worker --pool=prefork --concurrency=2``
with ``BENCH_BROKER_URL`` set. Delivery settings match the orchestrator's
(``orchestrator.transport.celery_config``: acks_late, reject on worker lost, prefetch 1, JSON,
the same transport options), so the ratio measures the orchestrator's own overhead. The
differences are the point of the comparison: raw Celery keeps results and chord counters
in the Redis result backend, the orchestrator in its SQL state database.

Wait on ``app.AsyncResult(result.id).get(interval=0.005)``: the result ``apply_async``
returns keeps links to its parents, and ``get`` then re-reads every parent from Redis on
each wake-up (for ``wide``, 500 GETs every 5 ms), which costs the client more CPU than
the worker spends and slows the run it is measuring.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chain, chord, group
from celery.canvas import Signature

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_RAW_QUEUE", "bench-raw")

app = Celery("bench_raw", broker=BROKER_URL, backend=BROKER_URL, set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    result_expires=600,
    broker_transport_options={
        "visibility_timeout": 3660.0,
        "unacked_restore_interval": 5.0,
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "health_check_interval": 10,
    },
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(x: Any = None) -> Any:
    return x


@app.task(name="bench.inc")
def inc(x: int) -> int:
    return x + 1


@app.task(name="bench.join")
def join(xs: list[int]) -> int:
    return sum(xs)


@app.task(name="bench.items")
def items(n: int) -> list[int]:
    return list(range(n))


@app.task(name="bench.fan_out", bind=True)
def fan_out(self: Any, xs: list[int]) -> Any:
    """Celery's idiom for a map over a runtime list: replace this task by a chord."""
    raise self.replace(chord(group(noop.si(x) for x in xs), join.s()))


@app.task(name="bench.node")
def node(xs: list[int] | None = None) -> int:
    return sum(xs or ()) + 1


# -- canvases equivalent to benchmarks/dags/* -------------------------------------------


def wide(width: int = 500) -> Signature:
    """root -> 500 no-ops -> join(all results)."""
    return chain(noop.si(0), chord(group(noop.si(i) for i in range(width)), join.s()))


def line(length: int = 100) -> Signature:
    """inc(0) -> inc -> ... (length tasks), returns ``length``."""
    return chain(inc.s(0), *(inc.s() for _ in range(length - 1)))


def mapped(width: int = 500) -> Signature:
    """items(500) -> fan_out, which becomes a chord of 500 no-ops and a join at run time."""
    return chain(items.si(width), fan_out.s())


def lattice(layers: int = 10, width: int = 10) -> Signature:
    """Explicit nested chords, layer by layer: each layer's header tasks receive the list
    of the previous layer's results; a final join sums the last layer.
    (``chain(group, group, ...)`` ran duplicate tasks on Celery 5.7: not used.)"""
    sig: Signature = join.s()
    for _ in range(layers):
        sig = chord(group(node.s() for _ in range(width)), sig)
    return sig
