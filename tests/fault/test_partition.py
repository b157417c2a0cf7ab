"""A hostile network: three hosts (network namespaces) share one run; one host is cut
off mid-task, or PostgreSQL restarts under all of them.

The broker and PostgreSQL (a server of the test's own, so it can be restarted) run in
the root namespace and listen on the links' root ends; a worker runs in each host; the
coordinator and the client run in the root namespace and reach the servers on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.processes import spawn, terminate, wait_for_workers
from orchestrator.model import records
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport.dispatch import make_producer_app
from tests import recording_hooks
from tests.fault import netns
from tests.hook_checks import check_each_transition_once
from tests.support import Ledger, free_port, make_settings, wait_idle, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 60
HOOK = "tests.recording_hooks:Recorder"
HELD = ("h0", "h1", "h2")


@dataclasses.dataclass
class Cluster:
    hosts: list[netns.Host]
    pg: netns.Postgres
    broker: netns.Valkey
    settings: Settings
    """The root namespace's (coordinator, client): servers on 127.0.0.1."""
    workers: list[netns.HostWorker]
    log_dir: Path

    def worker_on(self, host: netns.Host) -> netns.HostWorker:
        return next(w for w in self.workers if w.host == host)

    def host_of(self, worker_name: str | None) -> netns.Host:
        return next(w.host for w in self.workers if (worker_name or "").startswith(w.name + "@"))


@pytest.fixture
def cluster(request: pytest.FixtureRequest, ledger_dir: Path,
            tmp_path: Path) -> Iterator[Cluster]:
    """Three hosts with a worker of one process each; ``request.param`` may change that
    (``concurrency``) and override settings."""
    netns.require_tools()
    overrides = {"requeue_after": 2.0, "reconcile_interval": 0.3,
                 **getattr(request, "param", {})}
    concurrency = overrides.pop("concurrency", 1)
    tag = uuid.uuid4().hex[:6]
    with netns.hosts(3) as hosts:
        gateways = [h.gateway for h in hosts]
        pg = netns.Postgres(gateways, free_port())
        broker = netns.Valkey(gateways, free_port())
        workers: list[netns.HostWorker] = []
        coordinator: subprocess.Popen[bytes] | None = None
        try:
            pg.init()
            pg.start()
            pg.create_database("partition")
            broker.start()
            queue = f"partition-{tag}"

            def settings_at(address: str) -> Settings:
                return make_settings(broker.url(address), pg.url("partition", address),
                                     default_queue=queue, hooks=HOOK, **overrides)

            root = settings_at("127.0.0.1")
            store = Store(root.database.url)
            try:
                store.upgrade()
            finally:
                store.dispose()
            for i, h in enumerate(hosts):
                workers.append(netns.HostWorker(h, settings_at(h.gateway), name=f"{tag}h{i}",
                                                log_path=tmp_path / f"{tag}h{i}.log",
                                                concurrency=concurrency))
            wait_for_workers(broker.url("127.0.0.1"), root, [w.name for w in workers],
                             procs=[w.proc for w in workers])
            coordinator_log = tmp_path / "coordinator.log"
            coordinator = spawn(["orchestrator", "coordinator"], root,
                                log_path=str(coordinator_log))
            wait_until(lambda: coordinator.poll() is not None
                       or "reconciling every" in coordinator_log.read_text(errors="replace"),
                       timeout=WAIT_S, what="the coordinator to start")
            assert coordinator.poll() is None, coordinator_log.read_text(errors="replace")
            yield Cluster(hosts, pg, broker, root, workers, tmp_path)
        finally:
            if coordinator is not None:
                terminate(coordinator)
            for w in workers:
                w.kill()
            broker.stop()
            pg.destroy()


def _held_on_each_host(client: Client, run_id: str) -> dict[str, str] | None:
    """The worker running each held task, once all three run on three workers."""
    tasks = client.get_run(run_id).tasks
    running = {t: tasks[t].worker or "" for t in HELD if tasks[t].state == TaskState.RUNNING}
    if len(running) == 3 and len({w.split("@")[0] for w in running.values()}) == 3:
        return running
    return None


def _outcomes(run: records.Run, task_id: str) -> list[AttemptOutcome]:
    return [a.outcome for a in run.tasks[task_id].attempts]


def _done(ledger: Ledger, run_id: str, task_id: str, attempt: int) -> bool:
    return (ledger.path / f"{run_id}.{task_id}-{attempt}-done.mark").exists()


def _idle(settings: Settings, worker: netns.HostWorker) -> bool:
    assert settings.broker.url is not None
    app = make_producer_app(settings, settings.broker.url)
    try:
        active = app.control.inspect(timeout=1.0).active() or {}
    finally:
        app.close()
    return any(name.startswith(worker.name + "@") and not tasks
               for name, tasks in active.items())


def _each_task_succeeded_once(cluster: Cluster, run: records.Run) -> None:
    assert run.state == RunState.SUCCESS
    for t in run.tasks.values():
        assert t.state == TaskState.SUCCESS, t.task_id
        assert sum(a.outcome == AttemptOutcome.SUCCESS for a in t.attempts) == 1, t.task_id
    wait_idle(cluster.settings)  # hooks are called after the commits the run shows
    check_each_transition_once(run, recording_hooks.events(run.id))


def test_partition_cut_host_is_fenced_and_its_late_result_rejected(
        cluster: Cluster, ledger: Ledger) -> None:
    with Client(cluster.settings) as client:
        run_id = client.submit("spread3")
        running = wait_until(lambda: _held_on_each_host(client, run_id), timeout=WAIT_S,
                             what="a held task running on each host")
        victim = "h0"
        cut = cluster.host_of(running[victim])
        netns.cut(cut)
        try:
            ledger.open_gate(run_id, "go")
            # Its lease runs out; the coordinator resends it and another host takes over.
            wait_until(lambda: _outcomes(client.get_run(run_id), victim)
                       == [AttemptOutcome.LOST, AttemptOutcome.RUNNING], timeout=WAIT_S,
                       what="the cut host's attempt to be taken over")
            taken = client.get_run(run_id).tasks[victim]
            assert cluster.host_of(taken.worker) != cut
            # The cut host ran the body to the end: its result waits behind the cut.
            wait_until(lambda: _done(ledger, run_id, victim, 1), timeout=WAIT_S,
                       what="the cut host's body to finish")
        finally:
            netns.restore(cut)
        late = cluster.worker_on(cut)
        wait_until(lambda: _idle(cluster.settings, late), timeout=WAIT_S,
                   what="the cut host to deliver its late result")
        assert "'superseded'" in late.log_path.read_text(errors="replace")
        now = client.get_run(run_id).tasks[victim]
        # the late result changed nothing
        assert now.state == TaskState.RUNNING and now.attempt == 2
        assert _outcomes(client.get_run(run_id), victim) == [AttemptOutcome.LOST,
                                                              AttemptOutcome.RUNNING]
        ledger.open_gate(run_id, "again")
        run = client.wait(run_id, timeout=WAIT_S)
        assert client.result(run_id, victim) == {"i": 0, "attempt": 2}
    _each_task_succeeded_once(cluster, run)
    assert _outcomes(run, victim) == [AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    assert [e["attempt"] for e in ledger.of(run_id, victim)] == [1, 2]
    for task_id in set(run.tasks) - {victim}:
        assert len(ledger.of(run_id, task_id)) == 1, task_id
    assert late.proc.poll() is None  # the cut worker lived through it


# Room on each host to take work over, and passes far more often than heartbeats (as
# with the defaults: every 5 s against every 10 s), so that a coordinator back from the
# outage would see the leases run out before the workers could renew them.
@pytest.mark.parametrize("cluster", [{"concurrency": 2, "lease_seconds": 3.0,
                                      "reconcile_interval": 0.1}], indirect=True)
def test_partition_postgres_restarted_mid_run(cluster: Cluster, ledger: Ledger) -> None:
    lease = cluster.settings.worker.lease_seconds
    with Client(cluster.settings) as client:
        run_id = client.submit("spread3chains")
        wait_until(lambda: all(t.state == TaskState.RUNNING for t in
                               (client.get_run(run_id).tasks[h] for h in HELD)),
                   timeout=WAIT_S, what="the held tasks to run")
        cluster.pg.stop()
        stopped = time.time()  # no lease is renewed from here on: each runs out by + lease
        try:
            ledger.open_gate(run_id, "go")
            # Each host finishes its held task with the database down: the outcome waits.
            wait_until(lambda: all(_done(ledger, run_id, t, 1) for t in HELD), timeout=WAIT_S,
                       what="the held tasks to finish while PostgreSQL is down")
            # Down for longer than any lease: none of them could be renewed in time.
            wait_until(lambda: time.time() > stopped + lease, timeout=WAIT_S,
                       what="every lease to run out")
        finally:
            cluster.pg.start()
        run = client.wait(run_id, timeout=WAIT_S)
    _each_task_succeeded_once(cluster, run)
    for t in run.tasks.values():
        assert _outcomes(run, t.task_id) == [AttemptOutcome.SUCCESS], t.task_id
        assert [e["attempt"] for e in ledger.of(run_id, t.task_id)] == [1], t.task_id
    assert all(w.proc.poll() is None for w in cluster.workers)

