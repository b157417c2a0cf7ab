"""CLI inputs: out-of-range numbers and malformed ids are refused with a message and exit
status 2, never a traceback, by the real entry point (``orchestrator.cli:main``) against
a real database, SQLite and PostgreSQL; nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestrator import cli
from orchestrator.devstack.stack import LocalStack
from orchestrator.store import Store
from tests.support import ROOT, wait_idle

pytestmark = [pytest.mark.security, pytest.mark.integration]

HUGE = "100000000000000000000"
RUN = "0" * 32
LONG = "x" * 5000

BAD = {
    "runs list --limit huge": ["runs", "list", "--limit", HUGE],
    "runs list --limit 0": ["runs", "list", "--limit", "0"],
    "runs list --limit -1": ["runs", "list", "--limit", "-1"],
    "runs list --dag NUL": ["runs", "list", "--dag", "a\x00b"],
    "runs list --dag newline": ["runs", "list", "--dag", "dag\n"],
    "runs list --dag long": ["runs", "list", "--dag", LONG],
    "runs show NUL": ["runs", "show", "ab\x00"],
    "runs show long": ["runs", "show", "a" * 33],
    "runs show newline": ["runs", "show", "abc\n"],
    "cancel 32 non-hex": ["cancel", "g" * 32],
    "cancel NUL": ["cancel", "a" * 31 + "\x00"],
    "rerun --timeout nan": ["rerun", RUN, "--timeout", "nan"],
    "rerun --timeout 0": ["rerun", RUN, "--timeout", "0"],
    "rerun --from NUL": ["rerun", RUN, "--from", "t\x00"],
    "run dag NUL": ["run", "echo_any\x00"],
    "run dag newline": ["run", "echo_any\n"],
    "run dag long": ["run", LONG],
    "run --timeout -1": ["run", "echo_any", "--wait", "--timeout", "-1"],
    "run --timeout inf": ["run", "echo_any", "--wait", "--timeout", "1e400"],
    "run --timeout huge": ["run", "echo_any", "--wait", "--timeout", HUGE],
    "run --idempotency-key long": ["run", "echo_any", "--idempotency-key", "k" * 201],
    "run --idempotency-key NUL": ["run", "echo_any", "--idempotency-key", "k\x00"],
    "run --param huge int": ["run", "echo_any", "-p", "value=" + "9" * 5000],
    "run --param deep": ["run", "echo_any", "-p", "value=" + "[" * 100_000 + "]" * 100_000],
    "run --param 2**64": ["run", "echo_any", "-p", f"value={2**64}"],
    "run --param NUL": ["run", "echo_any", "-p", "value=a\x00"],
    "dags validate NUL": ["dags", "validate", "a\x00"],
    "dags validate long": ["dags", "validate", LONG],
    "worker --concurrency huge": ["worker", "--concurrency", HUGE],
    "worker --concurrency 0": ["worker", "--concurrency", "0"],
    "worker --queues": ["worker", "--queues", "a b"],
    "worker --hostname": ["worker", "--hostname", "w\n"],
    "worker --loglevel": ["worker", "--loglevel", "LOUD"],
    "up --workers huge": ["up", "--workers", HUGE],
    "up --workers -1": ["up", "--workers", "-1"],
    "up --concurrency 0": ["up", "--concurrency", "0"],
    "quickstart --concurrency 0": ["quickstart", "--concurrency", "0"],
    "quickstart --concurrency huge": ["quickstart", "--concurrency", HUGE],
    "quickstart --timeout nan": ["quickstart", "--timeout", "nan"],
    "quickstart dag newline": ["quickstart", "example\n"],
    "events emit name NUL": ["events", "emit", "ev\x00"],
    "events emit name newline": ["events", "emit", "ev\n"],
    "events emit name long": ["events", "emit", "e" * 201],
    "events emit name space": ["events", "emit", "an event"],
    "events emit --payload not JSON": ["events", "emit", "ev", "--payload", "{a: 1}"],
    "events emit --payload NaN": ["events", "emit", "ev", "--payload", "NaN"],
    "events emit --payload NUL": ["events", "emit", "ev", "--payload", '"a\\u0000"'],
    "events emit --payload huge int": ["events", "emit", "ev", "--payload", "9" * 5000],
    "events emit --payload 2**64": ["events", "emit", "ev", "--payload", f"{2**64}"],
    "events emit --payload deep": ["events", "emit", "ev", "--payload",
                                   "[" * 100_000 + "]" * 100_000],
    "events emit --payload too big": ["events", "emit", "ev", "--payload",
                                      '"' + "a" * (1024 * 1024) + '"'],
    "events list --limit 0": ["events", "list", "--limit", "0"],
    "events list --limit huge": ["events", "list", "--limit", HUGE],
    "events list --name NUL": ["events", "list", "--name", "a\x00"],
    "events list --kind": ["events", "list", "--kind", "timer"],
    "dags pause dag newline": ["dags", "pause", "echo_any\n"],
    "dags unpause dag NUL": ["dags", "unpause", "echo_any\x00"],
    "dags unpause unknown": ["dags", "unpause", "no_such_dag_anywhere"],
}


@pytest.fixture(scope="module")
def idle(stack: LocalStack) -> LocalStack:
    """The stack with nothing running, waited for once: these commands start nothing, so
    only a command that wrongly wrote could change a row count."""
    wait_idle(stack.settings)
    return stack


@pytest.fixture
def env(idle: LocalStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = idle.settings.as_env()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_input_exits_2_with_a_message(case: str, env: dict[str, str], stack: LocalStack,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(stack.settings.database.url)
    before = store.count_rows()
    monkeypatch.setattr(sys, "argv", ["orchestrator", *BAD[case]])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out = capsys.readouterr()
    assert exited.value.code == 2, (out.out, out.err)
    assert "Traceback" not in out.err + out.out
    assert out.err.strip(), "a message says what was wrong"
    assert store.count_rows() == before
    store.dispose()


@pytest.mark.parametrize("args", [["runs", "list", "--limit", HUGE],
                                  ["runs", "show", "run\nid"], ["run", "echo_any\n"],
                                  ["rerun", RUN, "--timeout", "nan"]])
def test_the_installed_command_says_the_same(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Invalid value" in proc.stderr or "error:" in proc.stderr
