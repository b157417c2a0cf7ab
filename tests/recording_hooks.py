"""A hook that writes every call to the run's file in the ledger folder, from whichever
process makes it (client, worker, coordinator): ORCH_HOOKS=tests.recording_hooks:Recorder."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from orchestrator.control import hooks


def path(run_id: str) -> Path:
    return Path(os.environ["ORCH_TEST_LEDGER_DIR"]) / f"{run_id}.hooks.jsonl"


def events(run_id: str) -> list[dict[str, Any]]:
    f = path(run_id)
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line]


class Recorder(hooks.Hooks):
    def _write(self, kind: str, event: Any) -> None:
        line = json.dumps({"hook": kind, "pid": os.getpid(), **dataclasses.asdict(event)})
        # one write per line with O_APPEND: lines from several processes never interleave
        fd = os.open(path(event.run_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def run_started(self, event: hooks.RunEvent) -> None:
        self._write("run_started", event)

    def task_queued(self, event: hooks.TaskEvent) -> None:
        self._write("task_queued", event)

    def attempt_started(self, event: hooks.AttemptEvent) -> None:
        self._write("attempt_started", event)

    def attempt_finished(self, event: hooks.AttemptEvent) -> None:
        self._write("attempt_finished", event)

    def task_finished(self, event: hooks.TaskEvent) -> None:
        self._write("task_finished", event)

    def run_finished(self, event: hooks.RunEvent) -> None:
        self._write("run_finished", event)
