"""The run view's pages, in process against the conftest stack's database (SQLite and
PostgreSQL): each page for an operator, the sign-in flow, the trigger form's inline
errors, the grid's mapped cells and keyset pages, the run page's live events."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.api import auth
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from tests.integration.html_tree import parse
from tests.integration.pages_support import Web, page
from tests.support import rows_at_rest

pytestmark = pytest.mark.integration


def test_every_page_renders_for_an_operator(web: Web, client: Client) -> None:
    failed = client.submit("browser_fail")
    mapped = client.submit("mapsq", {"n": 4})
    for run_id in (failed, mapped):
        client.wait(run_id, timeout=60)
    op = web.as_role("operator")

    home = page(op, "/")
    dag = home.find(data_dag_id="browser_fail")
    assert dag.find("a", "dag-link").attrs["href"] == "/dags/browser_fail"
    assert dag.find_all(cls="run-dot", data_state="failed")
    errors = home.find(id="load-errors").find_all(data_dag_file=None)
    assert any(e.attrs["data-dag-file"].endswith("tdag_broken.yaml") for e in errors)
    assert "cycle" in home.find(id="load-errors").text

    dag_page = page(op, "/dags/mapsq")
    nodes = dag_page.find("svg", "graph").find_all("g", "node")
    assert {n.attrs["data-task-id"] for n in nodes} == {"listing", "square", "total"}
    form = dag_page.find("form", id="trigger")
    assert {i.attrs["name"] for i in form.find_all("input") if
            i.attrs["name"].startswith("param.")} == {"param.n", "param.factor"}
    assert form.find("button", type="submit")
    assert "disabled" not in form.find("fieldset").attrs

    run = page(op, f"/runs/{failed}")
    head = run.find(id="run")
    assert (head.attrs["data-run-id"], head.attrs["data-state"]) == (failed, "failed")
    assert run.find("g", "node", data_task_id="explode").attrs["data-state"] == "failed"
    attempt = run.find("section", "task", data_task_id="explode").find(cls="attempt",
                                                                       data_attempt="1")
    assert "browser: the fuse blew" in attempt.find(cls="error").text
    assert 'raise ValueError("browser: the fuse blew")' in attempt.find("pre", "traceback").text
    log_href = attempt.find("a", "log-link").attrs["href"]
    assert log_href == f"/runs/{failed}/tasks/explode/log?attempt=1"
    assert run.find("button", id="rerun") and not run.find_all("button", id="cancel")
    # no Flower URL in the stack's settings: no links to it, the ids as text
    assert not attempt.find_all("a", "flower-task") and not attempt.find_all("a", "flower-worker")

    log = page(op, log_href).find("pre", id="log")
    assert "browser: preparing the fuse" in log.text and "browser: fuse lit" in log.text
    assert log.attrs["data-live"] == "false"

    mapped_page = page(op, f"/runs/{mapped}")
    square = mapped_page.find("g", "node", data_task_id="square")
    assert square.find("text", "counts").text == "4/4" and "mapped" in square.classes()
    section = mapped_page.find("section", "task", data_task_id="square")
    assert {s.attrs["data-task-id"] for s in section.find_all("section", "task")} == {
        f"square[{i}]" for i in range(4)}

    fragment = page(op, f"/runs/{failed}?task=explode")
    assert fragment.find("section", "task", data_task_id="explode").find("pre", "traceback")
    header = page(op, f"/runs/{failed}?part=header")
    assert header.find(id="run").attrs["data-state"] == "failed"


def test_pages_redirect_to_login_without_a_session(web: Web, client: Client) -> None:
    run_id = client.submit("browser_fail")
    client.wait(run_id, timeout=60)
    anon = web.anonymous()
    for path in ["/", "/dags/browser_fail", "/dags/browser_fail/grid", f"/runs/{run_id}",
                 f"/runs/{run_id}/tasks/explode/log?attempt=1", f"/runs/{run_id}?task=explode"]:
        answer = anon.get(path)
        assert answer.status_code == 303, path
        target = urlsplit(answer.headers["location"])
        assert target.path == "/login" and parse_qs(target.query)["next"] == [path], path
    assert anon.get(f"/runs/{run_id}/events").status_code == 401
    # a revoked token is no session either
    viewer = web.as_role("viewer")
    record = client.store.principal(viewer.cookies[auth.COOKIE])
    assert record is not None
    client.store.revoke_token(record.id)
    assert viewer.get("/").status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(web: Web,
                                                                      client: Client) -> None:
    anon = web.anonymous()
    login = page(anon, "/login?next=/dags/browser_fail")
    form = login.find("form", id="login")
    assert form.find("input", name="token") and form.find("button", type="submit")
    assert form.find("input", name="next").attrs["value"] == "/dags/browser_fail"

    bad = anon.post("/login", data={"token": "orch_not-a-token", "next": "/"})
    assert bad.status_code == 401 and "not valid" in bad.text
    assert auth.COOKIE not in anon.cookies

    _, token = client.store.create_token("pages-signin", "viewer")
    good = anon.post("/login", data={"token": token, "next": "/dags/browser_fail"})
    assert good.status_code == 303 and good.headers["location"] == "/dags/browser_fail"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie
    assert token not in anon.get("/").text  # the page never shows the token

    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]:
        other = web.anonymous()
        answer = other.post("/login", data={"token": token, "next": evil})
        assert answer.headers["location"] == "/", evil

    no_csrf = anon.post("/logout", data={})
    assert no_csrf.status_code == 403
    out = anon.post("/logout", data={"csrf": auth.csrf_token(token)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert auth.COOKIE not in anon.cookies
    assert anon.get("/").status_code == 303


def test_trigger_form_shows_inline_errors_and_writes_nothing(web: Web, client: Client,
                                                             stack: LocalStack) -> None:
    op = web.as_role("operator")
    before = rows_at_rest(client.store, stack.settings)
    answer = op.post("/dags/browser_params/trigger", data={
        "csrf": web.csrf(op), "param.count": "many", "param.mode": "slow"})
    assert answer.status_code == 422
    tree = parse(answer.text)
    errors = tree.find_all(cls="field-error")
    assert [e.attrs["data-param"] for e in errors] == ["count"]
    assert "integer" in errors[0].text
    # what was typed stays in the form, to fix
    form = tree.find("form", id="trigger")
    assert form.find("input", name="param.count").attrs["value"] == "many"
    assert form.find("input", name="param.mode").attrs["value"] == "slow"
    assert "disabled" not in form.find("fieldset").attrs  # still the operator's form
    assert client.store.count_rows() == before

    missing_csrf = op.post("/dags/browser_params/trigger", data={"param.count": "5"})
    assert missing_csrf.status_code == 403
    viewer = web.as_role("viewer")
    as_viewer = viewer.post("/dags/browser_params/trigger", data={
        "csrf": web.csrf(viewer), "param.count": "5"})
    assert as_viewer.status_code == 403
    viewer_form = page(viewer, "/dags/browser_params").find("form", id="trigger")
    assert "disabled" in viewer_form.find("fieldset").attrs
    assert rows_at_rest(client.store, stack.settings) == before

    good = op.post("/dags/browser_params/trigger", data={
        "csrf": web.csrf(op), "param.count": " 5 ", "param.mode": "slow"})
    assert good.status_code == 303
    run_id = re.fullmatch(r"/runs/([0-9a-f]{32})", good.headers["location"])
    assert run_id is not None
    run = client.wait(run_id.group(1), timeout=60)
    assert run.params == {"count": 5, "mode": "slow"} and run.state == "success"

    default = op.post("/dags/browser_params/trigger", data={"csrf": web.csrf(op)})
    assert default.status_code == 303  # empty fields: the declared defaults
    run = client.wait(default.headers["location"].rsplit("/", 1)[1], timeout=60)
    assert run.params == {"count": 2, "mode": "fast"}


def test_grid_collapses_mapped_tasks_and_pages_by_keyset(web: Web, client: Client) -> None:
    ids = [client.submit("mapsq", {"n": n}) for n in (2, 3, 5)]
    for run_id in ids:
        client.wait(run_id, timeout=60)
    viewer = web.as_role("viewer")
    grid = page(viewer, "/dags/mapsq/grid").find("table", id="grid")
    rows = grid.find_all("tr", data_run_id=None)
    assert [r.attrs["data-run-id"] for r in rows[:3]] == ids[::-1]
    for row, n in zip(rows[:3], (5, 3, 2), strict=True):
        cells = {c.attrs["data-task-id"]: c for c in row.find_all("td")}
        assert list(cells) == ["listing", "square", "total"]  # one cell per DAG task
        assert cells["square"].find(cls="counts").text == f"{n}/{n}"
        assert all(c.attrs["data-state"] == "success" for c in cells.values())

    first = page(viewer, "/dags/mapsq/grid?limit=2")
    older = [a for a in first.find_all("a") if a.text.startswith("Older")]
    assert [r.attrs["data-run-id"] for r in first.find_all("tr", data_run_id=None)] == \
        ids[:0:-1]
    assert older, "no link to the next page"
    second = page(viewer, older[0].attrs["href"])
    shown = [r.attrs["data-run-id"] for r in second.find_all("tr", data_run_id=None)]
    assert shown[0] == ids[0] and not set(shown) & set(ids[1:])

    assert "limit" in page(viewer, "/dags/mapsq/grid?limit=0", status=422).text
    page(viewer, "/dags/mapsq/grid?cursor=bm90LWEtY3Vyc29y", status=422)
    page(viewer, "/dags/no_such_dag/grid", status=404)


def test_run_events_send_a_snapshot_then_end(web: Web, client: Client) -> None:
    run_id = client.submit("mapsq", {"n": 3})
    client.wait(run_id, timeout=60)
    viewer = web.as_role("viewer")
    answer = viewer.get(f"/runs/{run_id}/events")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [block for block in answer.text.split("\n\n") if block.strip()]
    assert [e.splitlines()[0] for e in events] == ["event: snapshot", "event: end"]
    snap = json.loads(events[0].splitlines()[1].removeprefix("data: "))
    assert snap["run"] == {"id": run_id, "state": "success", "done": 6, "total": 6}
    assert set(snap["tasks"]) == {"listing", "square", "total"}
    assert snap["tasks"]["square"]["counts"] == "3/3"
    # the page shows the same signature, so a page loaded after the change fetches nothing
    section = page(viewer, f"/runs/{run_id}").find("section", "task", data_task_id="square")
    assert section.attrs["data-sig"] == snap["tasks"]["square"]["sig"]
    assert viewer.get("/runs/0123456789abcdef0123456789abcdef/events").status_code == 404


def test_unknown_things_are_html_not_found_pages(web: Web) -> None:
    viewer = web.as_role("viewer")
    for path in ["/dags/no_such_dag", "/runs/0123456789abcdef0123456789abcdef",
                 "/runs/zz", "/runs/0123456789abcdef0123456789abcdef/tasks/x/log"]:
        assert page(viewer, path, status=404).find("h1").text
    static = viewer.get("/static/app.js")
    assert static.status_code == 200 and "javascript" in static.headers["content-type"]
    assert viewer.get("/static/app.py").status_code == 404
    assert viewer.get("/static/..%2Fpages.py").status_code == 404
