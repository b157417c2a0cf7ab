"""Task logs per attempt, on real workers (SQLite and PostgreSQL): what a Python or shell
body prints and logs is stored while it runs, each attempt on its own, capped, and read
back through the client and `orchestrator logs`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.records import truncation_marker
from orchestrator.model.states import AttemptOutcome, RunState
from orchestrator.settings import Settings
from tests.support import ROOT, Ledger, make_settings, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 60
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT,
                          env=_env(settings), capture_output=True, text=True, timeout=120,
                          check=False)


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    return {**env, **settings.as_env()}


def test_print_stderr_and_logging_of_a_python_task(client: Client) -> None:
    run = client.wait(client.submit("logs_talk"), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    text = client.logs(run.id, "talker")
    lines = text.split("\n")
    assert lines[:2] == ["out: hello from print", "err: hello from stderr"]
    assert re.fullmatch(f"{STAMP} INFO tdag.logs: a record at info", lines[2])
    assert re.fullmatch(f"{STAMP} WARNING tdag.logs: a record at warning", lines[3])
    assert lines[4:] == ["out: from a thread the body started", "a partial line at the end"]
    assert "not the task's" not in text  # the orchestrator's and Celery's own records
    number, chunks = client.log_chunks(run.id, "talker")
    assert number == 1 and "".join(c.data for c in chunks) == text
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))


def test_a_quiet_task_has_an_empty_log(client: Client) -> None:
    run = client.wait(client.submit("logs_quiet"), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.log_chunks(run.id, "quiet") == (1, [])
    assert client.logs(run.id, "quiet") == ""


def test_a_shell_tasks_stderr_on_success_and_stdout_on_failure_are_kept(
        client: Client) -> None:
    run = client.wait(client.submit("logs_shell"), timeout=WAIT_S)
    ok = client.logs(run.id, "shell_ok")
    assert ok.index("out-line-1\n") < ok.index("out-line-2\n")
    assert "err-on-success\n" in ok
    assert client.result(run.id, "shell_ok") == "out-line-1\nout-line-2"  # as before
    failed = client.logs(run.id, "shell_fail")
    assert "out-on-failure\n" in failed and "err-on-failure\n" in failed
    attempt = run.tasks["shell_fail"].attempts[0]
    assert attempt.error_type == "ShellCommandFailed"
    assert attempt.error_message == "command exited with status 4: err-on-failure"


def test_each_attempt_of_a_retried_task_has_its_own_log(client: Client) -> None:
    run = client.wait(client.submit("logs_retry"), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.outcome for a in run.tasks["retried"].attempts] == [AttemptOutcome.FAILED,
                                                                 AttemptOutcome.SUCCESS]
    assert client.logs(run.id, "retried", 1) == "attempt 1 says hello\n"
    assert client.logs(run.id, "retried", 2) == "attempt 2 says hello\n"
    assert client.log_chunks(run.id, "retried")[0] == 2  # the latest by default
    assert client.logs(run.id, "retried") == "attempt 2 says hello\n"


def test_each_mapped_instance_has_its_own_log(client: Client) -> None:
    run = client.wait(client.submit("logs_mapped", {"n": 4}), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    for i in range(4):
        assert client.logs(run.id, f"shout[{i}]") == f"instance of item {i} at shout[{i}]\n"


def test_lines_are_stored_while_the_attempt_runs(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("logs_gate")
    wait_until(lambda: ledger.of(run_id, "gated_talker"), timeout=WAIT_S,
               what="the task to start")
    wait_until(lambda: "before the gate\n" in client.logs(run_id, "gated_talker"),
               timeout=WAIT_S, what="the first line to be stored while the task waits")
    assert client.attempt_outcome(run_id, "gated_talker") == (1, AttemptOutcome.RUNNING)
    assert client.logs(run_id, "gated_talker") == "before the gate\n"
    ledger.open_gate(run_id, "go")
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.logs(run_id, "gated_talker") == "before the gate\nafter the gate\n"


def test_a_long_line_is_stored_in_chunks_of_64_kib(client: Client) -> None:
    run = client.wait(client.submit("logs_big_line", {"kib": 200}), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    _, chunks = client.log_chunks(run.id, "big_line")
    assert "".join(c.data for c in chunks) == "y" * (200 * 1024) + "\n"
    assert len(chunks) >= 4 and all(len(c.data.encode()) <= 64 * 1024 for c in chunks)


@pytest.fixture
def capped_stack(broker_url: str, database_url: str, ledger_dir: Path,
                 tmp_path: Path) -> Iterator[LocalStack]:
    settings = make_settings(broker_url, database_url, max_log_bytes=4096)
    with LocalStack(settings, workers=1, concurrency=1, log_dir=str(tmp_path)) as s:
        yield s


def test_the_cap_ends_the_log_with_one_truncation_marker(capped_stack: LocalStack) -> None:
    with Client(capped_stack.settings) as client:
        run = client.wait(client.submit("logs_flood", {"lines": 2000}), timeout=WAIT_S)
        assert run.state == RunState.SUCCESS  # the task itself goes on
        _, chunks = client.log_chunks(run.id, "flood")
    marker = truncation_marker(4096)
    assert marker == "[orchestrator] log truncated: ORCH_MAX_LOG_BYTES (4096 bytes) reached\n"
    assert chunks[-1].data == marker
    assert [c.data for c in chunks].count(marker) == 1
    kept = "".join(c.data for c in chunks[:-1])
    assert len(kept.encode()) == 4096 and kept.startswith("flood line 00000 ")


def test_orchestrator_logs_prints_an_attempt(client: Client) -> None:
    run = client.wait(client.submit("logs_retry"), timeout=WAIT_S)
    latest = _cli(client.settings, "logs", run.id[:12], "retried")
    assert (latest.returncode, latest.stdout) == (0, "attempt 2 says hello\n"), latest.stderr
    first = _cli(client.settings, "logs", run.id, "retried", "--attempt", "1")
    assert (first.returncode, first.stdout) == (0, "attempt 1 says hello\n"), first.stderr
    mapped = client.wait(client.submit("logs_mapped", {"n": 2}), timeout=WAIT_S)
    inst = _cli(client.settings, "logs", mapped.id, "shout[1]")
    assert inst.stdout == "instance of item 1 at shout[1]\n", inst.stderr


def test_orchestrator_logs_follow_prints_until_the_attempt_ends(client: Client,
                                                                ledger: Ledger) -> None:
    run_id = client.submit("logs_gate")
    wait_until(lambda: ledger.of(run_id, "gated_talker"), timeout=WAIT_S,
               what="the task to start")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "logs", run_id,
                             "gated_talker", "--follow"], cwd=ROOT, env=_env(client.settings),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "before the gate\n"  # printed while it runs
        assert proc.poll() is None  # still following
        ledger.open_gate(run_id, "go")
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == "after the gate\n"


def _no_run_starts_with(client: Client, prefix: str) -> bool:
    try:
        client.store.resolve_run_id(prefix)
    except errors.UnknownRun:
        return True
    except errors.AmbiguousRun:
        return False
    return False


def test_unknown_run_task_or_attempt(client: Client) -> None:
    run = client.wait(client.submit("logs_quiet"), timeout=WAIT_S)
    with pytest.raises(errors.UnknownRun):
        client.logs("0" * 32, "quiet")
    with pytest.raises(errors.UnknownTask):
        client.logs(run.id, "nosuchtask")
    with pytest.raises(errors.UnknownAttempt):
        client.logs(run.id, "quiet", 2)
    unused = next(p for p in (f"{i:03x}" for i in range(4095, -1, -1))
                  if _no_run_starts_with(client, p))  # the shared database holds many
    for args, message in [
            (["0" * 32, "quiet"], f"no run {'0' * 32!r}"),
            ([unused, "quiet"], f"no run {unused!r}"),
            ([run.id, "nosuchtask"], f"run {run.id!r} has no task 'nosuchtask'"),
            ([run.id, "quiet", "--attempt", "2"], "has no attempt 2"),
            ([run.id, "quiet", "--follow", "--attempt", "7"], "has no attempt 7")]:
        proc = _cli(client.settings, "logs", *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr.replace("\n", " ") and "Traceback" not in proc.stderr
        assert proc.stdout == ""
    for bad in (["not-hex", "quiet"], [run.id, "bad id"], [run.id, "shout[x]"],
                [run.id, "quiet", "--attempt", "0"]):
        proc = _cli(client.settings, "logs", *bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (bad, proc.stderr)


def test_orchestrator_logs_stops_quietly_when_its_reader_does(client: Client) -> None:
    run = client.wait(client.submit("logs_flood", {"lines": 4000}), timeout=WAIT_S)
    with subprocess.Popen([sys.executable, "-m", "orchestrator", "logs", run.id, "flood"],
                          cwd=ROOT, env=_env(client.settings), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert proc.stdout.readline().startswith("flood line 00000 ")
            proc.stdout.close()  # like `| head -1`: more than a pipe's buffer is to come
            assert proc.wait(timeout=WAIT_S) == 0
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
