"""What capturing a task body's output costs per task, in microseconds (no broker).

``python -m benchmarks.log_capture``. A quiet body (the common case): the capture is
started and stopped around it, and nothing is written or woken. A body that prints one
line: the line is buffered, and the attempt's end writes it (one INSERT, SQLite).
"""

from __future__ import annotations

import sys
import tempfile
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

from orchestrator.settings import Settings
from orchestrator.store import Store
from tests.support import compiled_of
from workers.log_capture import LogCapture

NUMBER = 10_000


def _best_us(fn: Callable[[], object], number: int = NUMBER) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'state.db'}"
        store = Store(url)
        store.upgrade()
        settings = Settings.from_env({"ORCH_DATABASE_URL": url,
                                      "ORCH_SIGNING_KEY": "bench-" + uuid.uuid4().hex})
        capture = LogCapture(store, settings)
        dag = compiled_of({"a": []}, dag_id="bench_logs")
        run = uuid.uuid4().hex
        store.create_run(dag, run_id=run, params={})
        claim = store.claim(run, "a", 1, worker="bench", pid=1, lease_seconds=3600,
                            data_from=[], max_lost=3)
        assert claim is not None

        def quiet() -> None:
            with capture.attempt(run, "a", 1):
                pass

        seq = iter(range(1, 10**9))

        def one_line() -> None:
            with capture.attempt(run, "a", 1) as log:
                log._seq = next(seq)  # a fresh sequence number each time (same attempt)
                print("one line of output")

        quiet_us = _best_us(quiet)
        line_us = _best_us(one_line, number=500)
        store.dispose()
    sys.stdout.write(f"capture, quiet body:      {quiet_us:7.2f} us per task "
                     f"(best of 5 x {NUMBER})\n")
    sys.stdout.write(f"capture, one line logged: {line_us:7.2f} us per task "
                     "(SQLite, includes its INSERT)\n")


if __name__ == "__main__":
    main()
