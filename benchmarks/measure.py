"""What the benchmark measures and how: the workloads, a sample, CPU used by process
groups, and the loop that repeats a workload within its time budget."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console

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


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""



def repeat_workload(side: str, w: Workload, repeat: int,
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
        progress(side, w, i, s)
    return samples


def warm_up(side: str, workloads: list[Workload], once: Callable[[Workload], Sample]) -> None:
    # One pass over the small workloads: imports, connections, per-process stores and
    # caches in both pool children. dag10k is not repeated here (it is the slow one).
    t = time.perf_counter()
    for w in workloads:
        if w.tasks <= 1000:
            once(w)
    console.print(f"[dim]{side}: warmed up in {time.perf_counter() - t:.1f} s[/dim]")


def progress(side: str, w: Workload, i: int, s: Sample) -> None:
    extra = f", submit {s.submit_s:.3f} s" if w.name == "dag10k" and s.submit_s else ""
    console.print(f"[dim]{side:>12} {w.name:<8} #{i + 1}: {s.wall_s:.3f} s{extra}[/dim]")

