"""Named connections: where they come from (the environment first, then the connections
file and its references), what is refused and how it says so, and that a password or a
header value shows nowhere (repr, masked_url, the process's masker, errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.execution import connections
from orchestrator.execution.task_context import TaskContext
from orchestrator.observability import masking
from orchestrator.settings import Settings

pytestmark = pytest.mark.usefixtures("no_outside_connections")

PASSWORD = "pw-Zq8!x@y/z"
QUOTED = "pw-Zq8%21x%40y%2Fz"
URL = f"postgresql://etl:{QUOTED}@db.internal:5432/warehouse"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connections.yaml"
    path.write_text(text, encoding="utf-8")
    return path



def test_from_the_environment_by_upper_case_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_WAREHOUSE", URL)
    conn = connections.get("warehouse")
    assert (conn.url, conn.source, conn.scheme) == (URL, "env ORCH_CONN_WAREHOUSE",
                                                    "postgresql")
    assert [c.name for c in connections.all_connections()] == ["warehouse"]


def test_from_the_file_with_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("Bearer t0ken-value\n", encoding="utf-8")
    monkeypatch.setenv("REPORTING_URL", "mysql://r:rpw-123456@h/db")
    path = _file(tmp_path, f"""
connections:
  warehouse: sqlite:///{tmp_path}/w.db
  reporting: {{env: REPORTING_URL}}
  api:
    url: https://api.example.com/v1
    headers:
      Authorization: {{file: {secret_file}}}
      X-Team: data
""")
    monkeypatch.setenv(connections.FILE_VARIABLE, str(path))
    assert connections.get("warehouse").url == f"sqlite:///{tmp_path}/w.db"
    assert connections.get("reporting").url == "mysql://r:rpw-123456@h/db"
    api = connections.get("api")
    assert api.headers == {"Authorization": "Bearer t0ken-value", "X-Team": "data"}
    assert set(api.secrets()) == {"Bearer t0ken-value", "data"}
    assert [c.name for c in connections.all_connections()] == ["api", "reporting",
                                                               "warehouse"]


def test_the_environment_wins_over_the_file(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, "connections:\n  warehouse: sqlite:///from-file.db\n")
    monkeypatch.setenv(connections.FILE_VARIABLE, str(path))
    monkeypatch.setenv("ORCH_CONN_WAREHOUSE", "sqlite:///from-env.db")
    assert connections.get("warehouse").url == "sqlite:///from-env.db"
    assert [c.url for c in connections.all_connections()] == ["sqlite:///from-env.db"]


def test_a_changed_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path, "connections:\n  a: sqlite:///one.db\n")
    connections.use_file(path)
    assert connections.get("a").url == "sqlite:///one.db"
    path.write_text("connections:\n  a: sqlite:///two-longer.db\n", encoding="utf-8")
    assert connections.get("a").url == "sqlite:///two-longer.db"


def test_a_missing_connection_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(errors.ConnectionUnavailable,
                       match=r"no connection 'nope': ORCH_CONN_NOPE is not set .*"
                             r"ORCH_CONNECTIONS_FILE is unset"):
        connections.get("nope")
    path = _file(tmp_path, "connections:\n  a: sqlite:///a.db\n")
    connections.use_file(path)
    with pytest.raises(errors.ConnectionUnavailable, match=f"nor in {path}"):
        connections.get("nope")


@pytest.mark.parametrize(("text", "message"), [
    ("connections: [a, b]", "one key, 'connections'"),
    ("other: {}", "one key, 'connections'"),
    ("connections:\n  bad.name: sqlite://\n", "must match"),
    ("connections:\n  a: {env: X, file: Y}\n", r"a reference is \{env: NAME\} or"),
    ("connections:\n  a: {url: 'http://x', extra: 1}\n", "Extra inputs"),
    ("connections:\n  a: 42\n", "expected a non-empty string"),
    ("connections:\n  a: [\n", r"is not YAML text \(line"),
])
def test_a_bad_file_is_refused_naming_the_entry(tmp_path: Path, text: str,
                                                message: str) -> None:
    connections.use_file(_file(tmp_path, text))
    with pytest.raises(errors.ConnectionUnavailable, match=message):
        connections.get("a")


def test_a_value_that_is_not_a_url_is_refused_without_showing_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_X", "hunter2-but-not-a-url")
    with pytest.raises(errors.ConnectionUnavailable) as caught:
        connections.get("x")
    assert "hunter2" not in str(caught.value) and "not a URL" in str(caught.value)


def test_an_unreadable_reference_says_where(tmp_path: Path) -> None:
    connections.use_file(_file(tmp_path, "connections:\n  a: {env: NOT_SET_ANYWHERE}\n"))
    with pytest.raises(errors.ConnectionUnavailable, match=r"NOT_SET_ANYWHERE.*is not set"):
        connections.get("a")
    assert connections.secret_values() == []  # the masker of a process still starts


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"connections:\n" + b"#" * (connections.MAX_FILE_BYTES + 1))
    connections.use_file(path)
    with pytest.raises(errors.ConnectionUnavailable, match="bigger than"):
        connections.get("a")


def test_a_billion_laughs_file_is_refused_or_harmless(tmp_path: Path) -> None:
    laughs = "connections:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    connections.use_file(_file(tmp_path, laughs))
    with pytest.raises(errors.ConnectionUnavailable, match="expected a non-empty string"):
        connections.all_connections()


def test_the_password_shows_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_WAREHOUSE", URL)
    conn = connections.get("warehouse")
    assert conn.masked_url == "postgresql://etl:***@db.internal:5432/warehouse"
    assert QUOTED not in repr(conn) and PASSWORD not in repr(conn)
    assert set(conn.secrets()) == {QUOTED, PASSWORD}
    assert connections.describe(conn)["url"] == conn.masked_url
    masker = masking.process_masker(Settings())
    text = f"connecting to {URL} as etl with {PASSWORD}"
    shown = masker.mask(text)
    assert PASSWORD not in shown and QUOTED not in shown and "db.internal" in shown


def test_a_task_reads_one_from_its_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_API", "https://api.example.com")
    ctx = TaskContext("d", "r", "t", 1, {})
    assert ctx.connection("api").url == "https://api.example.com"
    with pytest.raises(errors.ConnectionUnavailable, match="must match"):
        ctx.connection("no-dashes")
