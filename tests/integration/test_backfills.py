"""Backfills with real workers, through the API and the CLI: the runs start oldest first, at
most max_active at a time, each created as one ends; a dry run writes nothing; a cancelled
backfill creates no more runs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from orchestrator import cli, errors
from orchestrator.client import Client
from orchestrator.model.states import FINISHED_RUN, RunState
from tests.api_support import API, api, problem, token
from tests.support import wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


def _jan1(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def test_an_api_backfill_runs_oldest_first_max_active_at_a_time(client: Client) -> None:
    with api(client, token(client, "operator")) as http:
        before = client.store.count_rows()
        dry = http.post(f"{API}/dags/bf_yearly/backfills",
                        json={"start": "2001-01-01", "end": "2006-01-01", "dry_run": True})
        assert dry.status_code == 201, dry.text
        assert dry.json() == {"backfill_id": None, "total": 5,
                              "first": "2001-01-01T00:00:00Z", "last": "2005-01-01T00:00:00Z"}
        assert client.store.count_rows() == before
        r = http.post(f"{API}/dags/bf_yearly/backfills",
                      json={"start": "2001-01-01", "end": "2006-01-01", "max_active": 2})
        assert r.status_code == 201, r.text
        bf_id = r.json()["backfill_id"]
        wait_until(lambda: client.store.backfill(bf_id).state == "success", timeout=WAIT_S,
                   what="the backfill to end")
        shown = http.get(f"{API}/backfills/{bf_id}").json()
        listed = http.get(f"{API}/backfills", params={"dag_id": "bf_yearly"}).json()
    assert (shown["handled"], shown["total"], shown["runs"]) == (5, 5, {"success": 5})
    assert bf_id in [b["id"] for b in listed["backfills"]]
    made = [r for r in client.runs(dag_id="bf_yearly", limit=500)
            if client.get_run(r.id).backfill_id == bf_id]
    made.sort(key=lambda r: (r.created_at, r.logical_time))  # the first two: one transaction
    assert [r.logical_time for r in made] == [_jan1(y) for y in range(2001, 2006)]
    for run in made:  # each task read its own run's logical time
        assert client.result(run.id, "stamp") == run.logical_time.isoformat()  # type: ignore[union-attr]
    # never more than two at a time: each run was created after all but one before it ended
    for i, run in enumerate(made[2:], start=2):
        ended = [m for m in made[:i] if m.finished_at is not None
                 and m.finished_at <= run.created_at]
        assert len(ended) >= i - 1, (i, run.created_at)


def test_bad_backfills_are_refused_and_write_nothing(client: Client) -> None:
    before = client.store.count_rows()
    with api(client, token(client, "operator")) as http:
        for body, words in (
                ({"start": "2005-01-01", "end": "2001-01-01"}, "must be after"),
                ({"start": "2001-01-01", "end": "2002-01-01", "reprocess": "some"}, None),
                ({"start": "2001-01-01", "end": "2002-01-01", "max_active": 0}, None)):
            got = problem(http.post(f"{API}/dags/bf_yearly/backfills", json=body), 422)
            if words:
                assert words in got["detail"]
        got = problem(http.post(f"{API}/dags/api_quick/backfills",
                                json={"start": "2001-01-01", "end": "2002-01-01"}), 422)
        assert "no time schedule" in got["detail"]
    assert client.store.count_rows() == before


def test_the_cli_backfills_lists_and_cancels(runner: CliRunner, client: Client) -> None:
    dry = runner.invoke(cli.app, ["backfill", "bf_yearly", "--start", "1501-01-01",
                                  "--end", "1701-01-01", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "200 runs: 1501-01-01T00:00:00+00:00 .. 1700-01-01T00:00:00+00:00" in dry.stdout
    # 200 years one at a time: far from done when the cancel comes
    made = runner.invoke(cli.app, ["backfill", "bf_yearly", "--start", "1501-01-01",
                                   "--end", "1701-01-01", "--max-active", "1", "--json"])
    assert made.exit_code == 0, made.output
    bf_id = json.loads(made.stdout)["backfill_id"]
    listed = runner.invoke(cli.app, ["backfills", "list", "--dag", "bf_yearly", "--json"])
    assert bf_id in [b["id"] for b in json.loads(listed.stdout)]
    cancelled = runner.invoke(cli.app, ["backfills", "cancel", bf_id])
    assert cancelled.exit_code == 0, cancelled.output
    shown = json.loads(runner.invoke(cli.app, ["backfills", "show", bf_id, "--json"]).stdout)
    assert shown["state"] == "cancelled" and shown["handled"] < 200
    runs = [r for r in client.runs(dag_id="bf_yearly", limit=500)
            if client.get_run(r.id).backfill_id == bf_id]
    wait_until(lambda: all(client.store.run_state(r.id) in FINISHED_RUN for r in runs),
               timeout=WAIT_S, what="its runs to end")
    assert len(runs) == shown["handled"]  # none created after the cancel
    again = runner.invoke(cli.app, ["backfills", "cancel", bf_id])
    assert isinstance(again.exception, errors.Conflict)  # main() prints it, exit code 1
    assert "already cancelled" in str(again.exception)
    assert {client.store.run_state(r.id) for r in runs} <= {RunState.SUCCESS,
                                                           RunState.CANCELLED}
