"""``orchestrator alerts list|show|listen`` on SQLite and PostgreSQL: list and show run in
process (CliRunner) over a database of the test's own holding a failed run's alerts and
their tries; listen runs as a user starts it, a process of its own on a free port, and
gets a real coordinator's signed webhook, a forged one, an unsigned one, a redelivery and
junk, then stops on SIGINT (Ctrl-C) by its PID."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from orchestrator import cli, errors
from orchestrator.client import Client
from orchestrator.coordinator.channels import Channels
from orchestrator.observability.masking import masker_for
from tests.alerts_support import ERROR, failed_run, one_delivered_one_failed, own_client
from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration

SECRET = "listen-test-secret-0123456789"


@pytest.fixture
def own(broker_url: str, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A client on an empty database; the CLI in process sees the same settings."""
    with own_client(broker_url, database_url, tmp_path) as client:
        for key, value in client.settings.as_env().items():
            monkeypatch.setenv(key, value)
        yield client


def _ok(runner: CliRunner, *args: str) -> str:
    res = runner.invoke(cli.app, ["alerts", *args])
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.stdout


def test_list_and_show_give_each_alert_and_each_try(own: Client) -> None:
    run_id = failed_run(own)
    one_delivered_one_failed(own, run_id)
    other = failed_run(own)
    runner = CliRunner()

    everything = json.loads(_ok(runner, "list", "--json"))
    assert [n["run_id"] for n in everything][:2] == [other, other]  # newest first
    assert len(everything) == 4
    mine = json.loads(_ok(runner, "list", "--run", run_id[:10], "--json"))
    by = {n["channel"]: n for n in mine}
    assert (by["webhook"]["event"], by["webhook"]["state"]) == ("run_failed", "delivered")
    assert (by["slack"]["event"], by["slack"]["state"], by["slack"]["tries"]) == (
        "task_failed", "failed", 2)
    assert "target" not in by["slack"] and "TEST_VIEW" not in json.dumps(mine)
    failed = json.loads(_ok(runner, "list", "--state", "failed", "--json"))
    assert [n["id"] for n in failed] == [by["slack"]["id"]]
    assert len(json.loads(_ok(runner, "list", "--limit", "1", "--json"))) == 1

    table = _ok(runner, "list", "--run", run_id)
    for n in mine:
        assert n["id"][:12] in table and n["event"] in table and n["state"] in table
    assert "500" in table and run_id[:12] not in table  # one run: its id is the header's
    both = _ok(runner, "list")
    assert run_id[:12] in both and other[:12] in both

    slack = by["slack"]["id"]
    shown = json.loads(_ok(runner, "show", slack[:9], "--json"))
    assert shown == by["slack"]
    assert [(d["attempt"], d["outcome"], d["status"]) for d in shown["deliveries"]] == [
        (1, "failed", 500), (2, "failed", 500)]
    text = _ok(runner, "show", slack)
    assert f"alert {slack}" in text and "task_failed" in text and "failed" in text
    assert f"says: RuntimeError: {ERROR}" in text
    assert "last error: the receiver answered 500" in text
    # the tries' table (80 columns here: its detail and holder columns fold)
    assert text.count("500") >= 3 and text.count("failed") >= 3 and "started (UTC)" in text
    pending = next(n for n in everything if n["run_id"] == other)
    assert "not tried yet" in _ok(runner, "show", pending["id"])
    assert "no notifications" in runner.invoke(
        cli.app, ["alerts", "list", "--run", run_id, "--state", "pending"]).output


def test_bad_input_gets_a_clear_error(own: Client) -> None:
    runner = CliRunner()
    for args, said in ((["show", "xyz"], "is not a notification id"),
                       (["list", "--state", "lost"], "'lost' is not one of"),
                       (["list", "--run", "zz"], "is not a run id"),
                       (["list", "--limit", "0"], "greater than or equal to 1"),
                       (["listen", "--port", "70000"], "less than or equal to 65535"),
                       (["listen", "--secret-env", "NOT-A-NAME"],
                        "is not an environment variable name")):
        res = runner.invoke(cli.app, ["alerts", *args])
        assert res.exit_code == 2, (args, res.output)
        assert said in " ".join(res.output.replace("│", " ").split()), (args, res.output)
    res = runner.invoke(cli.app, ["alerts", "show", "n" + "0" * 31])
    assert isinstance(res.exception, errors.UnknownNotification)
    assert "no notification 'n0000" in str(res.exception)
    res = runner.invoke(cli.app, ["alerts", "list", "--run", "0" * 32])
    assert isinstance(res.exception, errors.UnknownRun)
    # as a user runs it: the message and exit 2, no traceback, nothing bound
    env = {k: v for k, v in os.environ.items() if k != "TEST_LISTEN_UNSET"}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "alerts", "listen",
                           "--port", "0", "--secret-env", "TEST_LISTEN_UNSET"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "environment variable TEST_LISTEN_UNSET is not set" in proc.stderr
    assert "Traceback" not in proc.stderr and "listening" not in proc.stderr


class Listener:
    """``orchestrator alerts listen`` in a process of its own, output in files."""

    def __init__(self, folder: Path, port: int, secret: str | None) -> None:
        self.out, self.err = folder / "listen.out", folder / "listen.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
        args = ["alerts", "listen", "--port", str(port)]
        if secret is not None:
            env["TEST_LISTEN_SECRET"] = secret
            args += ["--secret-env", "TEST_LISTEN_SECRET"]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *args],
                                         cwd=ROOT, env=env, stdout=out, stderr=err)
        self.url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: "listening on" in self.err.read_text() or
                   self.proc.poll() is not None, 60, "the listener to bind")
        assert self.proc.poll() is None, self.err.read_text()
        assert secret is None or secret not in " ".join(self.proc.args)  # type: ignore[arg-type]

    def printed(self) -> str:
        return self.out.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(timeout=30)


def _signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_listen_prints_each_alert_and_whether_its_signature_verifies(
        own: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    listener = Listener(tmp_path, port, SECRET)
    try:
        # a real alert, as a coordinator sends it: claimed from the store, signed by the
        # webhook channel with the rule's secret read from the environment
        monkeypatch.setenv("TEST_VIEW_HOOK_URL", listener.url)
        monkeypatch.setenv("TEST_VIEW_HOOK_SECRET", SECRET)
        run_id = failed_run(own)
        taken = own.store.claim_notifications("listen-test", limit=10, lease=60)
        (hook,) = [o for o in taken if o.channel == "webhook"]
        channels = Channels(own.settings.alerts, masker_for(own.settings), "http://view.test")
        assert channels.deliver(hook) == 200
        wait_until(lambda: "signature:" in listener.printed(), 30, "the first alert printed")
        first = listener.printed()
        assert (f"alert run_failed  dag alerts_view  run {run_id}  task load_orders"
                in first)
        assert f"error: RuntimeError: {ERROR}" in first
        assert f"run page: http://view.test/runs/{run_id}" in first
        assert f"event id: {hook.id}\n" in first
        assert "signature: verified" in first

        body = json.dumps({"id": "n" + "1" * 31, "event": "task_failed", "dag_id": "d",
                           "run_id": "r" * 32, "task_id": "t", "attempt": 2,
                           "error": "boom\x1b[31m red"}).encode()
        sent = [
            ({"X-Orchestrator-Signature": _signed(body, "another secret")}, body),  # forged
            ({}, body),  # unsigned
            ({"X-Orchestrator-Signature": _signed(body, SECRET)}, body),  # good, seen before
        ]
        for headers, content in sent:
            r = httpx.post(listener.url, content=content, timeout=10, headers={
                "Content-Type": "application/json", "X-Orchestrator-Event-Id": "n" + "1" * 31,
                **headers})
            assert r.status_code == 200, r.text
        junk = httpx.post(listener.url, content=b"not json", timeout=10)
        assert junk.status_code == 400
        wait_until(lambda: listener.printed().count("signature:") == 4
                   and "refused" in listener.printed(), 30, "every alert printed")
    finally:
        assert listener.stop() == 0
    printed = listener.printed()
    first, forged, unsigned, again = printed.split("\nalert ")
    assert "task_failed  dag d" in forged and "task t (attempt 2)" in forged
    assert first.startswith("alert run_failed")
    assert "DOES NOT VERIFY" in forged and "(seen before" not in forged
    assert "MISSING" in unsigned and "(seen before: a redelivery" in unsigned
    assert "signature: verified" in again and "(seen before: a redelivery" in again
    assert "error: boom\\x1b[31m red" in forged  # no escape sequence reaches the terminal
    assert "\x1b" not in printed
    assert "refused a POST to /: its body is not a JSON object" in printed
    assert SECRET not in printed + listener.err.read_text()
    assert "stopped" in listener.err.read_text()
    assert f"listening on http://127.0.0.1:{port}/" in listener.err.read_text()


def test_listen_without_a_secret_checks_nothing_and_says_so(tmp_path: Path) -> None:
    listener = Listener(tmp_path, free_port(), None)
    try:
        r = httpx.post(listener.url, json={"event": "run_failed", "dag_id": "d"}, timeout=10)
        assert r.status_code == 200
        wait_until(lambda: "signature:" in listener.printed(), 30, "the alert printed")
    finally:
        assert listener.stop() == 0
    printed = listener.printed()
    assert "alert run_failed  dag d  run ?" in printed
    assert "event id: (no X-Orchestrator-Event-Id)" in printed
    assert "signature: not checked (no --secret-env)" in printed
    assert "not checking signatures" in listener.err.read_text()
