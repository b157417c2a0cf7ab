"""What a newcomer trips on: run-id prefixes, bad options, messages that name the flag,
retry backoffs longer than the requeue interval, and the README's client snippet."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState
from tests.support import ROOT, Ledger, make_settings

pytestmark = pytest.mark.integration
WAIT_S = 60


def test_runs_show_cancel_and_rerun_take_a_unique_prefix(runner: CliRunner,
                                                         client: Client) -> None:
    run_id = client.submit("typed", {"name": "ada"})
    client.wait(run_id, timeout=WAIT_S)
    shown = runner.invoke(cli.app, ["runs", "show", run_id[:12], "--json"])
    assert shown.exit_code == 0, shown.output
    assert f'"id": "{run_id}"' in shown.stdout
    rerun = runner.invoke(cli.app, ["rerun", run_id[:12], "--from", "greet", "--wait"])
    assert rerun.exit_code == 0, rerun.output
    gated = client.submit("gateonly")
    cancelled = runner.invoke(cli.app, ["cancel", gated[:12]])
    assert cancelled.exit_code == 0 and f"cancelled run {gated}" in cancelled.stdout
    # the list shows every id whole enough to name its run, at 80 columns
    listed = runner.invoke(cli.app, ["runs", "list", "--limit", "2"], terminal_width=80)
    cells = [line.split("│")[1].strip() for line in listed.stdout.splitlines() if "│" in line]
    assert [c for c in cells if c] == [gated[:12], run_id[:12]]
    assert all(len(line) <= 80 for line in listed.stdout.splitlines())


def test_an_ambiguous_prefix_lists_the_runs_it_matches(runner: CliRunner,
                                                       client: Client) -> None:
    firsts: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
    while not any(len(ids) > 1 for ids in firsts.values()):  # 17 runs at most
        run_id = client.submit("typed", {"name": "ada"})
        firsts[run_id[0]].append(run_id)
    for ids in firsts.values():  # none left running for the tests after this one
        for run_id in ids:
            client.wait(run_id, timeout=WAIT_S)
    char, ids = next((c, i) for c, i in firsts.items() if len(i) > 1)
    res = runner.invoke(cli.app, ["runs", "show", char])
    assert res.exit_code != 0
    assert f"run id prefix {char!r} matches several runs" in str(res.exception)
    # the database holds other tests' runs too: the message lists at most five matches
    listed = re.findall(r"[0-9a-f]{32}", str(res.exception))
    assert len(listed) >= 2 and all(i.startswith(char) for i in listed)
    assert set(ids[:2]) <= set(listed) or len(listed) == 5
    nonsense = runner.invoke(cli.app, ["runs", "show", "not-hex%"])
    assert nonsense.exit_code == 2
    assert "run ids are 32 hex" in " ".join(nonsense.output.replace("│", " ").split())


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "list", "--state", "bogus"], "Invalid value for '--state'"),
    (["runs", "list", "--limit", "0"], "Invalid value for '--limit'"),
    (["runs", "list", "--limit", "many"], "Invalid value for '--limit'"),
])
def test_bad_options_are_rejected_with_a_message(runner: CliRunner, args: list[str],
                                                 message: str) -> None:
    res = runner.invoke(cli.app, args)
    assert res.exit_code == 2
    assert message in re.sub(r"\x1b\[[0-9;]*m", "", res.output)


def test_rerun_of_a_run_without_failures_names_the_from_flag(runner: CliRunner,
                                                             client: Client) -> None:
    run_id = client.submit("typed", {"name": "ada"})
    client.wait(run_id, timeout=WAIT_S)
    res = runner.invoke(cli.app, ["rerun", run_id])
    assert res.exit_code != 0
    assert "--from TASK" in str(res.exception)


def test_a_retry_backoff_longer_than_the_requeue_interval_is_honoured(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    # The coordinator would resend a queued task after 0.5 s; the retry is due after 3 s.
    settings = make_settings(broker_url, database_url, requeue_after=0.5,
                             reconcile_interval=0.1)
    with LocalStack(settings, workers=1, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        run = client.wait(client.submit("slowretry"), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    first, second = run.tasks["fails_first"].attempts
    assert (first.outcome, second.outcome) == (AttemptOutcome.FAILED, AttemptOutcome.SUCCESS)
    assert first.finished_at is not None
    assert (second.started_at - first.finished_at).total_seconds() >= 3.0
    assert len(ledger.of(run.id, "fails_first")) == 2  # and it ran only twice


@pytest.fixture
def example_stack(broker_url: str, database_url: str, ledger_dir: Path,
                  tmp_path: Path) -> Iterator[LocalStack]:
    settings = make_settings(broker_url, database_url, dags_path=ROOT / "dags")
    with LocalStack(settings, workers=1, concurrency=2, log_dir=str(tmp_path)) as s:
        yield s


def _readme_snippet(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_client_snippet_runs_as_written(example_stack: LocalStack) -> None:
    snippet = _readme_snippet("### The Python client")
    assert "Client()" in snippet and "client.cancel(" in snippet and "client.rerun(" in snippet
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(example_stack.settings.as_env())
    proc = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True,
                          text=True, timeout=180, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "success"
    assert "sum of squares 30, largest 16" in proc.stdout
