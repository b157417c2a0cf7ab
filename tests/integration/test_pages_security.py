"""The run view against hostile values and the wrong people: everything a DAG file, a
param, a worker or a task's output can put on a page is escaped (in HTML, in the SVG, in
attributes and links); viewers get no buttons and their posts are refused; a form post
without the session's CSRF value does nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.store.results import Claim, Outgoing
from tests.alerts_support import Outcome, own_client, try_due
from tests.integration.html_tree import Element, parse
from tests.integration.pages_support import HOSTILE, Web, page, web_of

pytestmark = [pytest.mark.integration, pytest.mark.security]

FLOWER = "http://flower.test:5555"
HOSTILE_YAML = """\
id: hostile
description: {text}
params:
  note: {{type: string, default: {text}, description: {text}}}
  items: {{type: array, default: [{text}]}}
tasks:
  - id: first
    shell: "true"
  - id: second
    shell: "true"
    upstream: [first]
"""


HOSTILE_ALERTS_YAML = """\
id: hostile_alerts
tasks:
  - id: first
    shell: "true"
notify:
  - on: [task_failed, run_failed]
    webhook: {url: "http://127.0.0.1:9/hook"}
"""


@pytest.fixture
def hostile(stack: LocalStack, tmp_path: Path) -> Iterator[Web]:
    """The app over a DAG folder with a hostile DAG and a broken file with a hostile
    name, on the stack's database, linking to a Flower."""
    quoted = '"' + HOSTILE.replace("\\", "\\\\").replace('"', '\\"') + '"'
    (tmp_path / "hostile.yaml").write_text(HOSTILE_YAML.format(text=quoted))
    (tmp_path / "bad<script>x.yaml").write_text(f"id: {quoted}\ntasks: []\n")
    settings = stack.settings.with_env(ORCH_DAGS_PATH=str(tmp_path), ORCH_FLOWER_URL=FLOWER)
    with Client(settings) as client, web_of(client) as web:
        yield web


def failed_run(web: Web, worker: str) -> str:
    """A hostile run whose first task failed with hostile output, error and traceback."""
    client = web.client
    dag = client.dag("hostile")
    run_id = web.store_run(dag, {"note": HOSTILE, "items": [HOSTILE]})
    claim = client.store.claim(run_id, "first", 1, worker=worker, pid=4242, lease_seconds=60,
                               data_from=[], max_lost=3, celery_id=HOSTILE[:60])
    assert isinstance(claim, Claim)
    assert client.store.append_log(run_id, "first", 1, 1, HOSTILE + "\n")
    client.store.fail(run_id, "first", 1, error_type="Boom<b>", message=HOSTILE,
                      traceback=HOSTILE, retry_in=None, p=dag.plan, token=claim.token)
    return run_id


def no_markup_from(tree: Element, raw: str, path: str) -> None:
    """Nothing of HOSTILE became an element, and it is in the page as text."""
    assert "<script>alert" not in raw and "<img src=x" not in raw, path
    assert not tree.find_all("img", src="x"), path
    assert not any(e.tag == "script" and e.attrs.get("src") != "/static/app.js"
                   for e in tree.iter()), path


def test_every_hostile_value_is_escaped(hostile: Web) -> None:
    worker = '<b>w"1</b>@host'
    run_id = failed_run(hostile, worker)
    op = hostile.as_role("operator")
    paths = ["/", "/dags/hostile", "/dags/hostile/grid", f"/runs/{run_id}",
             f"/runs/{run_id}?task=first", f"/runs/{run_id}/tasks/first/log?attempt=1"]
    trees = {}
    for path in paths:
        trees[path] = tree = page(op, path)
        no_markup_from(tree, op.get(path).text, path)

    home = trees["/"]
    assert HOSTILE in home.find(data_dag_id="hostile").text
    broken = home.find(id="load-errors").find_all(data_dag_file=None)
    assert [b.attrs["data-dag-file"].rsplit("/", 1)[1] for b in broken] == ["bad<script>x.yaml"]

    dag = trees["/dags/hostile"]
    assert HOSTILE in dag.find(cls="lead").text
    form = dag.find("form", id="trigger")
    assert form.find("input", name="param.note").attrs["value"] == HOSTILE
    assert json.loads(form.find("textarea", name="param.items").text) == [HOSTILE]
    assert HOSTILE in form.find(cls="hint").text

    run = trees[f"/runs/{run_id}"]
    attempt = run.find("section", "task", data_task_id="first").find(cls="attempt")
    assert attempt.find("pre", "traceback").text == HOSTILE
    assert HOSTILE in attempt.find(cls="error").text
    assert attempt.find("a", "flower-worker").attrs["href"] == \
        f"{FLOWER}/worker/{quote(worker, safe='')}"
    assert attempt.find("a", "flower-task").attrs["href"] == \
        f"{FLOWER}/task/{quote(HOSTILE[:60], safe='')}"
    params = json.loads(run.find("details", "params").find("pre").text)
    assert params == {"note": HOSTILE, "items": [HOSTILE]}
    assert run.find("g", "node", data_task_id="first").attrs["data-state"] == "failed"

    log = trees[f"/runs/{run_id}/tasks/first/log?attempt=1"].find("pre", id="log")
    assert log.text == HOSTILE + "\n"


def test_hostile_trigger_input_comes_back_escaped_with_its_error(hostile: Web) -> None:
    op = hostile.as_role("operator")
    before = hostile.client.store.count_rows()
    answer = op.post("/dags/hostile/trigger", data={
        "csrf": hostile.csrf(op), "param.note": HOSTILE, "param.items": HOSTILE})
    assert answer.status_code == 422
    tree = parse(answer.text)
    no_markup_from(tree, answer.text, "trigger")
    errors = tree.find_all(cls="field-error")
    assert [e.attrs["data-param"] for e in errors] == ["items"]
    assert "must be JSON" in errors[0].text
    assert tree.find("textarea", name="param.items").text == HOSTILE
    assert hostile.client.store.count_rows() == before

    good = op.post("/dags/hostile/trigger", data={
        "csrf": hostile.csrf(op), "param.note": HOSTILE, "param.items": '["<b>"]'})
    assert good.status_code == 303
    run_id = good.headers["location"].rsplit("/", 1)[1]
    hostile.made.append(run_id)
    assert hostile.client.get_run(run_id).params == {"note": HOSTILE, "items": ["<b>"]}


def test_viewers_get_no_buttons_and_their_posts_are_refused(hostile: Web) -> None:
    client = hostile.client
    run_id = hostile.store_run(client.dag("hostile"))
    viewer, op = hostile.as_role("viewer"), hostile.as_role("operator")

    seen = page(viewer, f"/runs/{run_id}")
    assert seen.find(id="run").attrs["data-state"] == "running"
    assert not seen.find_all("button", id="cancel") and not seen.find_all("button", id="rerun")
    assert page(op, f"/runs/{run_id}").find("button", id="cancel")

    refused = viewer.post(f"/runs/{run_id}/cancel", data={"csrf": hostile.csrf(viewer)})
    assert refused.status_code == 403 and "operator" in refused.text
    assert viewer.post(f"/runs/{run_id}/cancel").status_code == 403
    assert viewer.post(f"/runs/{run_id}/rerun",
                       data={"csrf": hostile.csrf(viewer)}).status_code == 403
    assert client.store.run_state(run_id) == "running"

    # an operator's session without the form's CSRF value, or with another's, does nothing
    assert op.post(f"/runs/{run_id}/cancel").status_code == 403
    assert op.post(f"/runs/{run_id}/cancel", data={"csrf": hostile.csrf(viewer)}
                   ).status_code == 403
    assert op.post(f"/runs/{run_id}/cancel", data={"csrf": "0" * 64}).status_code == 403
    # nor does a bearer header on the page's form route: the page forms take the cookie
    _, token = client.store.create_token(f"pages-bearer-{uuid.uuid4().hex[:6]}", "operator")
    anon = hostile.anonymous()
    bearer = anon.post(f"/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 403
    assert client.store.run_state(run_id) == "running"

    # a running run cannot be rerun: the page says why, and nothing changes
    conflict = op.post(f"/runs/{run_id}/rerun", data={"csrf": hostile.csrf(op)})
    assert conflict.status_code == 409 and "still running" in conflict.text
    assert parse(conflict.text).find("button", id="cancel")  # the operator's page still

    done = op.post(f"/runs/{run_id}/cancel", data={"csrf": hostile.csrf(op)})
    assert done.status_code == 303 and done.headers["location"] == f"/runs/{run_id}"
    assert client.store.run_state(run_id) == "cancelled"
    after = page(op, f"/runs/{run_id}")
    assert after.find(id="run").attrs["data-state"] == "cancelled"
    assert after.find("button", id="rerun") and not after.find_all("button", id="cancel")
    again = op.post(f"/runs/{run_id}/cancel", data={"csrf": hostile.csrf(op)})
    assert again.status_code == 409 and "already cancelled" in again.text


def test_errors_and_tracebacks_are_masked_as_in_the_api(hostile: Web) -> None:
    client = hostile.client
    secret = client.settings.security.signing_key
    assert secret
    dag = client.dag("hostile")
    run_id = hostile.store_run(dag)
    claim = client.store.claim(run_id, "first", 1, worker="w@host", pid=1, lease_seconds=60,
                               data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    client.store.fail(run_id, "first", 1, error_type="ConnectionError",
                      message=f"cannot connect with key {secret}",
                      traceback=f"Traceback ...\nConnectionError: key={secret}\n",
                      retry_in=None, p=dag.plan, token=claim.token)
    viewer = hostile.as_role("viewer")
    for path in [f"/runs/{run_id}", f"/runs/{run_id}?task=first",
                 f"/runs/{run_id}/tasks/first/log?attempt=1"]:
        text = viewer.get(path).text
        assert secret not in text, path
        assert "***" in text, path
    attempt = page(viewer, f"/runs/{run_id}").find("section", "task", data_task_id="first")
    assert attempt.find("pre", "traceback").text == "Traceback ...\nConnectionError: key=***\n"


@pytest.fixture
def hostile_alerts(broker_url: str, database_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app over a DAG that alerts, on a database of the test's own (its claims take
    only this test's alerts)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "hostile_alerts.yaml").write_text(HOSTILE_ALERTS_YAML)
    with own_client(broker_url, database_url, tmp_path, dags_path=folder) as client, \
            web_of(client) as web:
        yield web


def test_hostile_alert_errors_and_tries_are_escaped(hostile_alerts: Web) -> None:
    """What an alert shows comes from a failing task (its error, in the payload) and a
    receiver (what it answered, in each try and the last error): all of it escaped."""
    client = hostile_alerts.client
    dag = client.dag("hostile_alerts")
    run_id = hostile_alerts.store_run(dag)
    claim = client.store.claim(run_id, "first", 1, worker="w@host", pid=1, lease_seconds=60,
                               data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    client.store.fail(run_id, "first", 1, error_type="Boom<b>", message=HOSTILE,
                      traceback=None, retry_in=None, p=dag.plan, token=claim.token)

    def hostile_answer(out: Outgoing) -> Outcome:  # run_failed: tried again; task_failed: given up
        return False, 500, HOSTILE, out.event == "run_failed"

    assert len(try_due(client.store, run_id, HOSTILE, hostile_answer)) == 2
    viewer = hostile_alerts.as_role("viewer")
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/alerts"):
        tree = page(viewer, path)
        no_markup_from(tree, viewer.get(path).text, path)
        section = tree.find("section", id="alerts")
        assert section.attrs["data-settled"] == "false"  # one waits for its next try
        items = {e.attrs["data-event"]: e for e in section.find_all("li", "alert-item")}
        assert set(items) == {"task_failed", "run_failed"}
        for event, state in (("task_failed", "failed"), ("run_failed", "pending")):
            item = items[event]
            assert item.attrs["data-state"] == state
            assert HOSTILE in item.find(cls="alert-says").text
            assert item.find(cls="alert-last-error").text == f"Last error: {HOSTILE}"
            (tried,) = item.find_all("tr", "delivery")
            assert tried.find("td", "detail").text == HOSTILE
            assert tried.find("td", "holder").text == HOSTILE
            assert tried.find("td", "status").text == "500"
