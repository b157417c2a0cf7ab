"""The stack users' tests run their DAGs on, and the faults they can inflict on it.

An :class:`OrchStack` is real processes on loopback: an embedded Valkey broker (with a
password), a SQLite database in a temporary folder, two workers of one pool process each
on the DAG folder (listening on the default queue and every queue its tasks name), and a
coordinator, whose reconciler brings back work lost with a worker or the broker. Timings
are scaled down so a loss is noticed in seconds: a 2 s lease, a reconciler pass every
0.3 s, a queued message no worker took resent after 3 s.

Two workers of one process rather than one of two: a worker killed mid-task leaves the
other taking work while its replacement starts. (Workers outlive a broker restart with
tasks in hand: ``transport.kombu_guard``.)

Faults (each leaves a working stack behind, so the next test finds one):

- :meth:`OrchStack.kill_worker`: SIGKILL a worker and its pool (its process group); a
  new worker starts, and the attempt that was running is taken over as the next one;
- :meth:`OrchStack.restart_broker`: the broker crashes (SIGKILL: what it held is lost,
  it keeps nothing) and comes back on the same port with the same password;
- :meth:`OrchStack.deliver_twice`: the next message of a task reaches workers twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.authoring import discovery
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.processes import Worker, wait_for_workers
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import TaskState
from orchestrator.testing.waiting import wait_until
from orchestrator.transport.idle import InFlight
from orchestrator.transport.reconnect import forget_connections
from orchestrator.transport.redelivery import Redelivery

if TYPE_CHECKING:
    from orchestrator.client import Client

log = logging.getLogger(__name__)

TIMINGS = {"ORCH_LEASE_SECONDS": 2.0, "ORCH_RECONCILE_INTERVAL": 0.3,
           "ORCH_REQUEUE_AFTER": 3.0, "ORCH_UNACKED_RESTORE_INTERVAL": 1.0}
WORKERS = 2
CONCURRENCY = 1
_STOP_S = 5.0
"""Warm shutdown a worker gets at the end of the session before it is killed (a test may
leave a task blocked)."""


class Duplicate:
    """The second delivery :meth:`OrchStack.deliver_twice` arranged."""

    def __init__(self, redelivery: Redelivery, stack: OrchStack) -> None:
        self._redelivery = redelivery
        self._stack = stack

    @property
    def delivered(self) -> bool:
        """Whether the task's message was sent, and its copy put on the queue."""
        return self._redelivery.pushed.is_set()

    @property
    def attempt(self) -> dict[str, Any] | None:
        """What the duplicated message names: ``{"dag", "task", "run", "attempt"}``."""
        return self._redelivery.named

    def wait(self, timeout: float = 60.0) -> None:
        """Until the copy was delivered and handled: the message was sent and copied,
        and nothing is left on the broker or in a worker (WaitTimeout otherwise)."""
        task = self._redelivery.want["task"]
        if not self._redelivery.pushed.wait(timeout):
            raise errors.WaitTimeout(f"no message of task {task!r} was sent in {timeout} s")
        self._stack.wait_idle(timeout)


class OrchStack:
    """Broker, database, worker and coordinator on the DAG folder ``dags``; its files
    (database, logs) in ``folder``. ``start()`` starts it, ``stop()`` stops every process
    it started, by PID."""

    __test__ = False  # not a test class, whatever module imports it

    def __init__(self, dags: Path, folder: Path) -> None:
        self.dags = dags
        self.log_dir = folder
        """Where each process's log is (``orch-w0-<pid>.log``, ``coordinator-0.log``)."""
        self.broker = EmbeddedBroker()
        self.settings = settings_.Settings()
        self.queues: tuple[str, ...] = ()
        self._stack: LocalStack | None = None
        self._armed: list[Redelivery] = []
        self._workers_started = 0

    @property
    def broker_url(self) -> str:
        assert self.broker.url is not None, "the stack is not started"
        return self.broker.url

    @property
    def database_url(self) -> str:
        return self.settings.database.url

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._local.workers]

    @property
    def _local(self) -> LocalStack:
        assert self._stack is not None, "the stack is not started"
        return self._stack

    def start(self) -> OrchStack:
        url = self.broker.start()
        env: dict[str, Any] = {
            "ORCH_BROKER_URL": url, "ORCH_DATABASE_URL": f"sqlite:///{self.log_dir / 'state.db'}",
            "ORCH_DAGS_PATH": str(self.dags), "ORCH_SIGNING_KEY": secrets.token_urlsafe(32),
            "ORCH_DEFAULT_QUEUE": f"orch-test-{uuid.uuid4().hex[:8]}", **TIMINGS}
        # Not the folder's stack file: a stack `orchestrator up` runs there is not ours.
        self.settings = settings_.load(stack_file=False).with_env(**env)
        self.queues = _queues(self.settings)
        self._stack = LocalStack(self.settings, workers=0, coordinator=True,
                                 log_dir=str(self.log_dir))
        self._stack.start()
        self._add_workers(WORKERS)
        return self

    def stop(self) -> None:
        self._disarm()
        if self._stack is not None:
            for w in self._stack.workers:
                w.stop(timeout=_STOP_S)
            self._stack.stop()
            self._stack = None
        self.broker.stop()

    def client(self) -> Client:
        """A new client of this stack (close it, or use it in a ``with``)."""
        from orchestrator.client import Client

        return Client(self.settings)

    def kill_worker(self, run_id: str | None = None, task: str | None = None, *,
                    timeout: float = 60.0) -> list[int]:
        """SIGKILL workers with their pool processes (each one's process group: no ack,
        no cleanup), and start as many new ones, waiting until they answer. With
        ``run_id`` and ``task``: wait until that task runs, and kill the worker running
        it; without: kill every worker. The attempt that was running is lost: once its
        lease runs out the reconciler sends it again, and a live worker takes it over as
        the next attempt. Returns the PIDs killed."""
        if (run_id is None) != (task is None):
            raise errors.InvalidArgument("kill_worker takes run_id and task together")
        victims = list(self._local.workers)
        if run_id is not None and task is not None:
            name = self._wait_running(run_id, task, timeout)
            victims = [w for w in victims if w.name == name] or victims
        for w in victims:
            w.kill()
            self._local.workers.remove(w)
        self._add_workers(len(victims), timeout)
        return [w.pid for w in victims]

    def restart_broker(self, *, timeout: float = 60.0) -> None:
        """Crash the broker (SIGKILL: the messages it held are gone, as it keeps none),
        start it again on the same port with the same password, and wait until every
        worker answers through it. Work whose message was lost is sent again by the
        reconciler (a queued task after 3 s). A worker that does not come back within
        ``timeout`` (see the module's docstring) is killed and replaced, its running
        attempt taken over as after :meth:`kill_worker`."""
        self._disarm()
        if self.broker.server_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.broker.server_pid, signal.SIGKILL)
        self.broker.stop()
        self.broker.start()  # its port and password are kept
        forget_connections()  # this process's, to the crashed server
        try:
            wait_for_workers(self.broker_url, self.settings,
                             [w.name for w in self._local.workers], timeout=timeout,
                             procs=[w.proc for w in self._local.workers])
        except errors.OrchestratorError as exc:
            log.warning("a worker did not come back after the broker restarted (%s); "
                        "replacing the workers", exc)
            for w in list(self._local.workers):
                w.kill()
                self._local.workers.remove(w)
            self._add_workers(WORKERS, timeout)

    def deliver_twice(self, task: str, *, dag: str | None = None,
                      run_id: str | None = None) -> Duplicate:
        """Make the next message sent for ``task`` (of ``dag``, of ``run_id``, when given)
        reach the workers twice: watching starts before this returns, so call it before
        the message is sent (before the submit, or before its upstream task ends). The
        copy is the same signed message, pushed onto the same queue; the claim in the
        database makes the second delivery a no-op (or, while the first runs, a deferral),
        so the task's body runs once and the run ends as it would have. ``.wait()`` on the
        result until the copy was handled, before counting side effects."""
        r = Redelivery(self.broker_url, task, dag_id=dag, run_id=run_id).start()
        self._armed.append(r)
        return Duplicate(r, self)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until nothing sent is left in flight: every queue empty, nothing delivered and
        unacknowledged, no worker with a task running, reserved or counting down."""
        watch = InFlight(self.settings, self.queues)
        last: list[str | None] = [None]

        def idle() -> bool:
            last[0] = watch.busy(len(self._local.workers))
            return last[0] is None

        try:
            wait_until(idle, timeout, what="the stack to be idle", interval=0.1)
        except errors.WaitTimeout as exc:
            raise errors.WaitTimeout(f"{exc} ({last[0]})") from None
        finally:
            watch.close()

    def restore(self) -> None:
        """After a test: stop watching for messages, and bring back whatever is down
        (the broker, the worker, the coordinator), so the next test finds a whole stack."""
        self._disarm()
        if self.broker.server_pid is None or not _alive(self.broker.server_pid):
            self.broker.stop()
            self.broker.start()
            forget_connections()
        self._replace_dead()
        local = self._local
        if not any(p.poll() is None for p in local.coordinators):
            local.start_coordinator()

    def _replace_dead(self, timeout: float = 60.0) -> None:
        local = self._local
        dead = [w for w in local.workers if w.proc.poll() is not None]
        for w in dead:
            local.workers.remove(w)
        if len(local.workers) < WORKERS:
            self._add_workers(WORKERS - len(local.workers), timeout)

    def _add_workers(self, n: int, timeout: float = 60.0) -> list[Worker]:
        started = []
        for _ in range(n):
            name = f"orch-w{self._workers_started}-{os.getpid()}"
            self._workers_started += 1
            started.append(self._local.add_worker(name, wait=False, queues=self.queues,
                                                  concurrency=CONCURRENCY))
        wait_for_workers(self.broker_url, self.settings, [w.name for w in started],
                         timeout=timeout, procs=[w.proc for w in started])
        return started

    def _wait_running(self, run_id: str, task: str, timeout: float) -> str:
        """The name of the worker running ``task``, once it runs."""
        with self.client() as c:
            def running() -> str | None:
                t = c.get_run(run_id).tasks.get(task)
                if t is not None and t.state in (TaskState.SUCCESS, TaskState.FAILED):
                    raise errors.Conflict(f"task {task!r} of run {run_id} already ended "
                                          f"{t.state}: too late to kill its worker")
                if t is None or t.state != TaskState.RUNNING or not t.worker:
                    return None
                return t.worker.split("@")[0]

            name = wait_until(running, timeout, what=f"task {task!r} of run {run_id} to run")
        assert name is not None
        return name

    def _disarm(self) -> None:
        for r in self._armed:
            r.close()
        self._armed.clear()


class Stacks:
    """The stacks of one test session, one per DAG folder, started when first asked for
    and stopped at the end. ``folder_for(dags)`` gives each a temporary folder."""

    def __init__(self, folder_for: Callable[[Path], Path]) -> None:
        self._folder_for = folder_for
        self._stacks: dict[Path, OrchStack] = {}

    def get(self, dags: Path) -> OrchStack:
        stack = self._stacks.get(dags)
        if stack is None:
            stack = OrchStack(dags, self._folder_for(dags))
            try:
                stack.start()
            except BaseException:
                stack.stop()
                raise
            self._stacks[dags] = stack
        return stack

    def close(self) -> None:
        for stack in self._stacks.values():
            stack.stop()
        self._stacks.clear()


def _queues(settings: settings_.Settings) -> tuple[str, ...]:
    """The default queue and every queue a task of the DAG folder names."""
    bag = discovery.load_configured(settings.dags)
    named = {t.queue for d in bag.dags.values() for t in d.spec.tasks if t.queue}
    return (settings.worker.default_queue, *sorted(named - {settings.worker.default_queue}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"
