"""The Prometheus collector over a snapshot: families, types, labels, histogram buckets
and the snapshot cache (no database: a snapshot made here)."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.model.records import Pool
from orchestrator.observability import metrics
from orchestrator.store.metrics import LATENCY_BUCKETS, RUN_BUCKETS, Histogram, Snapshot


def _h(bounds: tuple[float, ...], *values: float) -> Histogram:
    return Histogram(bounds, tuple(sum(1 for v in values if v <= le) for le in bounds),
                     len(values), sum(values))


SNAP = Snapshot(
    at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    runs={("d", "success"): 3, ("d", "failed"): 1}, running_runs={"d": 2},
    attempts={("d", "t", "success"): 4, ("d", "t", "lost"): 1},
    queue_wait={("d", None): _h(LATENCY_BUCKETS, 0.002), ("d", "q0"): _h(LATENCY_BUCKETS, 0.2),
                ("d", "other"): _h(LATENCY_BUCKETS, 7.0)},
    run_duration={"d": _h(RUN_BUCKETS, 1.5, 100.0)},
    handoff={"d": _h(LATENCY_BUCKETS, 0.0004, 0.003, 90.0)},
    resends={"d": 5}, takeovers={"d": 1}, oldest_queued={"d": 12.5},
    pools=[Pool(name="default", slots=None, used=1, queued=1, running=0, waiting=0),
           Pool(name="db", slots=2, used=2, queued=0, running=1, waiting=4)])


def _families(text: str) -> dict[str, tuple[str, dict[tuple[str, frozenset[tuple[str, str]]],
                                                       float]]]:
    return {f.name: (f.type, {(s.name, frozenset(s.labels.items())): s.value
                              for s in f.samples})
            for f in text_string_to_metric_families(text)}


def test_every_family_with_its_type_and_labels() -> None:
    text = metrics.render(metrics.registry(lambda: SNAP, default_queue="q0")).decode()
    fams = _families(text)
    assert {n: t for n, (t, _) in fams.items()} == {
        "orchestrator_runs": "counter", "orchestrator_running_runs": "gauge",
        "orchestrator_task_attempts": "counter",
        "orchestrator_queue_wait_seconds": "histogram",
        "orchestrator_run_duration_seconds": "histogram",
        "orchestrator_handoff_latency_seconds": "histogram",
        "orchestrator_reconciler_resends": "counter",
        "orchestrator_reconciler_takeovers": "counter",
        "orchestrator_oldest_queued_task_age_seconds": "gauge",
        **{f"orchestrator_pool_{n}": "gauge" for n in (
            "slots", "used_slots", "queued_tasks", "running_tasks", "waiting_tasks")}}
    runs = fams["orchestrator_runs"][1]
    assert runs[("orchestrator_runs_total", frozenset({("dag", "d"), ("state", "success")}))] == 3
    samples = fams["orchestrator_handoff_latency_seconds"][1]

    def bucket(le: str) -> float:
        return samples[("orchestrator_handoff_latency_seconds_bucket",
                        frozenset({("dag", "d"), ("le", le)}))]

    assert [bucket(le) for le in ("0.001", "0.005", "60.0", "+Inf")] == [1, 2, 2, 3]
    # no task names a queue and one names the default queue: one series between them
    waits = fams["orchestrator_queue_wait_seconds"][1]
    counts = {dict(labels)["queue"]: v for (name, labels), v in waits.items()
              if name.endswith("_count")}
    assert counts == {"q0": 2, "other": 1}
    assert fams["orchestrator_oldest_queued_task_age_seconds"][1] == {
        ("orchestrator_oldest_queued_task_age_seconds", frozenset({("dag", "d")})): 12.5}

    def pool(family: str) -> dict[str, float]:
        return {dict(labels)["pool"]: v for (_, labels), v in fams[family][1].items()}

    assert pool("orchestrator_pool_slots") == {"db": 2}  # the unbounded one has no bound
    assert pool("orchestrator_pool_used_slots") == {"default": 1, "db": 2}
    assert pool("orchestrator_pool_waiting_tasks") == {"default": 0, "db": 4}


def test_a_snapshot_is_reused_until_it_is_ttl_old() -> None:
    reads: list[int] = []
    now = [100.0]

    def read() -> Snapshot:
        reads.append(1)
        return SNAP

    collector = metrics.StoreCollector(read, default_queue="q", ttl=5.0,
                                       clock=lambda: now[0])
    for t in (100.0, 101.0, 104.9):
        now[0] = t
        list(collector.collect())
    assert len(reads) == 1
    now[0] = 105.0
    list(collector.collect())
    assert len(reads) == 2


def test_registering_reads_nothing() -> None:
    def read() -> Snapshot:
        raise AssertionError("the database was queried at registration")

    metrics.registry(read, default_queue="q")
