"""logs: one task that prints timestamped lines, for the log line -> SSE client latency.

It waits for the gate file the benchmark creates once its SSE client is connected, so
that no line is printed before anyone listens."""

import os
import time

from orchestrator import dag, task

GATE_TIMEOUT_S = 120.0


@task
def talk(gate: str, lines: int, every: float) -> int:
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no gate {gate} within {GATE_TIMEOUT_S} s")
        time.sleep(0.01)
    for i in range(lines):
        # the wall clock: the client compares it with its own, on the same machine
        print(f"bench-line {i} {time.time():.6f}", flush=True)
        time.sleep(every)
    return lines


@dag(id="bench_logs")
def bench_logs(gate: str = "", lines: int = 50, every: float = 0.1) -> None:
    talk(gate, lines, every)
