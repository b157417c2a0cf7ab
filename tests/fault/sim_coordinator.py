"""A coordinator on simulated time, for tests/fault/test_scheduler_ha.py.

    python -m tests.fault.sim_coordinator CLOCK_FILE

Runs the scheduler's passes the way ``orchestrator coordinator`` does (register the DAG
folder's DAGs when a file changed, fire what is due, send the first tasks), every
``ORCH_SCHEDULE_INTERVAL`` seconds of real time, until SIGTERM (or SIGKILL). Its clock
is the simulated time the test controls: CLOCK_FILE holds epoch seconds, read before
every pass (the test replaces it atomically). Settings come from the environment.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import types
from pathlib import Path

from orchestrator import settings as settings_
from orchestrator.coordinator.scheduler import Scheduler
from orchestrator.wiring import Wiring

log = logging.getLogger("sim_coordinator")


def read_clock(path: Path) -> float:
    """The simulated time: epoch seconds, as the test last wrote them."""
    return float(path.read_text())


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.fault.sim_coordinator CLOCK_FILE", file=sys.stderr)
        return 2
    clock_file = Path(argv[0])
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s {os.getpid()} %(levelname)s %(message)s")
    settings = settings_.load(stack_file=False)
    stop = threading.Event()

    def on_sigterm(_signum: int, _frame: types.FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    with Wiring(settings) as wiring:
        wiring.dispatcher  # noqa: B018 -- fail now, in one line, without a broker URL
        scheduler = Scheduler(settings, wiring.outcomes, bag=lambda: wiring.bag,
                              clock=lambda: read_clock(clock_file))
        log.info("simulated coordinator up, clock %s", clock_file)
        while not stop.is_set():
            try:
                made = scheduler.tick()
            except Exception:  # a failed pass is retried, as the real coordinator does
                log.exception("scheduler pass failed")
            else:
                if made:
                    log.info("fired %d runs", made)
            stop.wait(settings.coordinator.schedule_interval)
    log.info("simulated coordinator stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
