"""http tasks as YAML and Python write them: what they compile to, what is refused (with
a message naming the task and the problem), and the pure parts of the runner (joining a
connection's URL and a path, the query, what errors show of a URL)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from orchestrator import dag, errors, http_task, secret, task
from orchestrator.authoring import yaml_dags
from orchestrator.kinds import http
from orchestrator.model import spec
from orchestrator.model.secret_spec import SecretArg


def yaml_task(body: str, extra: str = "") -> spec.TaskSpec:
    text = textwrap.dedent("""
        id: h
        params:
          since: {type: string, default: "2024-01-01"}
        tasks:
          - id: make
            python: builtins:dict
          - id: t
        """) + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n" + extra
    return yaml_dags.load_text(text).task("t")


def yaml_error(body: str) -> str:
    with pytest.raises(errors.DagError) as info:
        yaml_task(body)
    return str(info.value)


def test_yaml_url_with_expect_as_one_status() -> None:
    t = yaml_task("""
        http: {method: get, url: "https://api.example.com/v1/x", expect: 200}
        retries: 3
        timeout: 10
        """)
    assert t.kind == "http" and t.http is not None
    assert (t.http.method, t.http.url, t.http.conn, t.http.expect) == (
        "GET", "https://api.example.com/v1/x", None, (200,))
    assert (t.retries, t.timeout) == (3, 10.0)
    assert t.kwargs == {}


def test_yaml_conn_path_secret_header_and_expect_list() -> None:
    t = yaml_task("""
        http:
          method: POST
          conn: api
          path: /orders
          headers: {X-Token: {secret: {env: API_TOKEN}}, Accept: application/json}
          json: {task: make}
          expect: [200, 201]
        """)
    assert t.http is not None
    assert (t.http.conn, t.http.path, t.http.expect) == ("api", "/orders", (200, 201))
    assert t.http.headers == {"X-Token": SecretArg(env="API_TOKEN"),
                              "Accept": "application/json"}
    assert t.kwargs == {"json": spec.TaskArg(task="make")}


def test_yaml_params_references_wire_dependencies() -> None:
    t = yaml_task("""
        http:
          conn: api
          path: /orders
          params: {since: {param: since}, after: {task: make}, page: 1}
        """)
    assert t.kwargs == {"params.since": spec.ParamArg(param="since"),
                        "params.after": spec.TaskArg(task="make"),
                        "params.page": spec.ValueArg(value=1)}
    assert t.dependencies == ("make",)


@pytest.mark.parametrize(("body", "message"), [
    ('http: {url: "https://x/y", json: {a: 1}}', "a GET request has no json body"),
    ('http: {method: HEAD, url: "https://x/y", json: 1}', "a HEAD request has no json body"),
    ('http: {url: "ftp://x/y"}', "url must start with http:// or https://"),
    ('http: {url: "file:///etc/passwd"}', "url must start with http:// or https://"),
    ('http: {url: "https://x/y", conn: api}', "give exactly one of url"),
    ("http: {method: GET}", "give exactly one of url"),
    ('http: {url: "https://x/y", path: /z}', "path goes with conn"),
    ('http: {conn: "no-dashes"}', "connection name 'no-dashes' must match"),
    ('http: {url: "https://x/y", headers: {"Bad Name": v}}', "header name 'Bad Name' is not"),
    ('http: {url: "https://x/y", headers: {"X-A": "v\\r\\nX-Injected: 1"}}',
     "header 'X-A' has a CR, LF or NUL"),
    ('http: {conn: api, path: "/a\\r\\nHost: evil"}', "has a space, CR, LF or NUL"),
    ('http: {url: "https://x/y", expect: [700]}', "expect: 700 is not an HTTP status"),
    ('http: {url: "https://x/y", body: 1}', "unknown key(s) ['body']"),
    ('http: {url: "https://x/y"}\nkwargs: {a: 1}', "not args/kwargs"),
])
def test_yaml_refusals(body: str, message: str) -> None:
    text = yaml_error(body)
    assert "task 't'" in text and message in text


def test_the_test_dags_http_file_validates_against_the_schema() -> None:
    path = Path(__file__).resolve().parents[1] / "dags" / "tdag_http.yaml"
    schema = json.loads(yaml_dags.SCHEMA_PATH.read_text(encoding="utf-8"))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)] == []
    compiled = yaml_dags.load_file(path)
    assert {t.kind for t in compiled.tasks} == {"http"}


def test_yaml_unknown_method_is_refused_at_its_line() -> None:
    text = yaml_error('http: {method: BREW, url: "https://x/y"}')
    assert text.startswith("<yaml>:8: ") and "tasks.1.http.method: Input should be 'GET'" in text


def test_yaml_post_may_have_a_body_put_patch_delete_too() -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        t = yaml_task(f'http: {{method: {method}, url: "https://x/y", json: [1]}}')
        assert t.kwargs == {"json": spec.ValueArg(value=[1])}


@task
def make_order(n: int) -> dict[str, Any]:
    return {"n": n}


def test_python_http_task_compiles_as_yaml_does() -> None:
    @dag(id="http_py")
    def http_py(since: str = "2024-01-01") -> None:
        order = make_order(1)
        http_task("fetch", conn="api", path="/orders", params={"since": since},
                  headers={"Authorization": secret(env="API_AUTH")}, expect=[200],
                  retries=3, timeout=10)
        http_task("post", url="https://api.example.com/orders", method="post", json=order,
                  expect=[201, 202])

    fetch, post = http_py.spec.task("fetch"), http_py.spec.task("post")
    assert fetch.http is not None and post.http is not None
    assert (fetch.http.conn, fetch.http.path, fetch.http.expect) == ("api", "/orders", (200,))
    assert fetch.http.headers == {"Authorization": SecretArg(env="API_AUTH")}
    assert fetch.kwargs == {"params.since": spec.ParamArg(param="since")}
    assert (fetch.retries, fetch.timeout) == (3, 10.0)
    assert (post.http.method, post.http.expect) == ("POST", (201, 202))
    assert post.kwargs == {"json": spec.TaskArg(task="make_order")}
    assert post.dependencies == ("make_order",)


@pytest.mark.parametrize(("call", "message"), [
    ({"url": "https://x/y", "json": {"a": 1}}, "a GET request has no json body"),
    ({"url": "gopher://x/y"}, "url must start with http:// or https://"),
    ({"url": "https://x/y", "conn": "api"}, "give exactly one of url"),
    ({"url": "https://x/y", "headers": {"X-A": "v\nX-B: 1"}}, "has a CR, LF or NUL"),
    ({"url": "https://x/y", "headers": {"X A": "v"}}, "is not an HTTP token"),
])
def test_python_refusals(call: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.DagError, match="task 'bad'") as info:
        @dag(id="http_bad")
        def http_bad() -> None:
            http_task("bad", **call)
    assert message in str(info.value)


@pytest.mark.parametrize(("base", "path", "joined"), [
    ("https://x/v1", "/orders", "https://x/v1/orders"),
    ("https://x/v1/", "/orders", "https://x/v1/orders"),
    ("https://x/v1", "orders", "https://x/v1/orders"),
    ("https://x", "/orders", "https://x/orders"),
    ("https://x/v1", "", "https://x/v1"),
    ("https://x/v1?tenant=a", "/orders?page=2", "https://x/v1/orders?tenant=a&page=2"),
    ("https://x/v1", "?page=2", "https://x/v1?page=2"),
    ("https://u:p@x:8443/v1", "/o#frag", "https://u:p@x:8443/v1/o"),
    # Never another host: a path that looks like a URL is still a path of this one.
    ("https://x/v1", "//evil.example/o", "https://x/v1/evil.example/o"),
    ("https://x/v1", "https://evil.example/o", "https://x/v1/https://evil.example/o"),
])
def test_join_url(base: str, path: str, joined: str) -> None:
    assert http.join_url(base, path) == joined


def test_origin_shows_no_credentials_path_or_query() -> None:
    assert http.origin("https://user:pw@api.example.com:8443/v1?key=k") == (
        "https://api.example.com:8443")
    assert http.origin("http://[::1]:80/x") == "http://[::1]:80"


def test_query_of() -> None:
    values = {"json": {"ignored": True}, "params.page": 2, "params.tag": ["a", "b"],
              "params.none": None, "params.on": True, "params.off": False,
              "params.filter": {"a": [1]}, "params.x": 1.5}
    assert http.query_of(values) == [("page", "2"), ("tag", "a"), ("tag", "b"),
                                     ("on", "true"), ("off", "false"),
                                     ("filter", '{"a":[1]}'), ("x", "1.5")]
