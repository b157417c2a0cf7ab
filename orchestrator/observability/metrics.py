"""Prometheus metrics from the store's snapshot (committed state, not process counters).

A custom collector on a registry of its own (never the process-wide default one, so
nothing else's metrics leak into ours, nor ours into a test's). A snapshot is kept for
``ttl`` seconds: scrapes in a burst (several Prometheus servers, a dashboard refreshing)
cost one set of queries. Labels are dag, task and queue only, never a run id.

Counters count finished things, which only grow (a rerun reopening a finished run takes
it out of its state's count until it ends again). What is in progress is a gauge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector, CollectorRegistry

from orchestrator.store.metrics import Histogram, Snapshot

CACHE_SECONDS = 5.0
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""What generate_latest writes: the 0.0.4 text format every Prometheus reads."""


class StoreCollector(Collector):
    """Turns :class:`Snapshot` s into metric families; ``read`` takes a new one."""

    def __init__(self, read: Callable[[], Snapshot], *, default_queue: str,
                 ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._default_queue = default_queue
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        """The cached snapshot, or a new one once it is ``ttl`` old. Concurrent scrapes
        wait for the one that reads, then share its answer."""
        with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self._ttl:
                self._cached = (now, self._read())
            return self._cached[1]

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        yield _counter("orchestrator_runs", "Finished runs by DAG and final state.",
                       ["dag", "state"], s.runs)
        yield _gauge("orchestrator_running_runs", "Runs in progress by DAG.", ["dag"],
                     {(d,): n for d, n in s.running_runs.items()})
        yield _counter("orchestrator_task_attempts",
                       "Finished task attempts by DAG, task (a mapped task's instances "
                       "under the mapped task) and outcome.",
                       ["dag", "task", "outcome"], s.attempts)
        yield _histogram("orchestrator_queue_wait_seconds",
                         "Seconds from a task's message going out (queued, or due for a "
                         "retry) to its attempt starting.", ["dag", "queue"],
                         _merge_queues(s.queue_wait, self._default_queue))
        yield _histogram("orchestrator_run_duration_seconds",
                         "Seconds from a run's submit to its end.", ["dag"],
                         {(d,): h for d, h in s.run_duration.items()})
        yield _histogram("orchestrator_handoff_latency_seconds",
                         "Seconds from the end of the parent that made a task ready to "
                         "the start of its attempt.", ["dag"],
                         {(d,): h for d, h in s.handoff.items()})
        yield _counter("orchestrator_reconciler_resends",
                       "Task messages the reconciler sent again (lost, or never taken).",
                       ["dag"], {(d,): n for d, n in s.resends.items()})
        yield _counter("orchestrator_reconciler_takeovers",
                       "Attempts lost with their worker, taken over by a new attempt.",
                       ["dag"], {(d,): n for d, n in s.takeovers.items()})
        yield _gauge("orchestrator_oldest_queued_task_age_seconds",
                     "Age of the oldest task queued and not yet taken by a worker, by "
                     "DAG (max() over DAGs for all of them).", ["dag"],
                     {(d,): age for d, age in s.oldest_queued.items()})
        yield _gauge("orchestrator_pool_slots", "Slots of each bounded pool.", ["pool"],
                     {(p.name,): p.slots for p in s.pools if p.slots is not None})
        yield _gauge("orchestrator_pool_used_slots",
                     "Slots held by a pool's queued, running and up-for-retry tasks.",
                     ["pool"], {(p.name,): p.used for p in s.pools})
        for state in ("queued", "running", "waiting"):
            yield _gauge(f"orchestrator_pool_{state}_tasks",
                         f"Tasks of a pool that are {state}"
                         + (" for a slot." if state == "waiting" else "."),
                         ["pool"], {(p.name,): getattr(p, state) for p in s.pools})


def _merge_queues(by_queue: dict[tuple[str, str | None], Histogram],
                  default: str) -> dict[tuple[str, str], Histogram]:
    """A task that names the default queue and one that names none share one series."""
    out: dict[tuple[str, str], Histogram] = {}
    for (dag, queue), h in by_queue.items():
        key = (dag, queue or default)
        out[key] = out[key] + h if key in out else h
    return out


def _counter(name: str, doc: str, labels: list[str],
             values: dict[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        family.add_metric([str(v) for v in key], n)
    return family


def _gauge(name: str, doc: str, labels: list[str],
           values: dict[Any, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, v in sorted(values.items()):
        family.add_metric([str(x) for x in key], v)
    return family


def _histogram(name: str, doc: str, labels: list[str],
               values: dict[Any, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, h in sorted(values.items()):
        buckets = [(repr(float(le)), n) for le, n in zip(h.bounds, h.cumulative,
                                                            strict=True)]
        family.add_metric([str(x) for x in key], [*buckets, ("+Inf", h.count)], h.sum)
    return family


def registry(read: Callable[[], Snapshot], *, default_queue: str,
             ttl: float = CACHE_SECONDS) -> CollectorRegistry:
    """A registry of our own holding only the store's metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(read, default_queue=default_queue, ttl=ttl))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    """The Prometheus text format."""
    return generate_latest(reg)
