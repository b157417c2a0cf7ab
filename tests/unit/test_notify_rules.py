"""Alert rules, deadlines and callbacks as DAG files and the global rules file write them:
validated at load, errors naming the file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator import dag, errors, task
from orchestrator.authoring import notify_rules, yaml_dags
from orchestrator.model import notify
from orchestrator.model.compiled import CompiledDag

RULES = """\
notify:
  - on: [run_failed, task_failed, deadline_missed]
    webhook: {url: "https://hooks.example.com/x", secret: {env: HOOK_SECRET}}
  - on: [run_failed]
    slack: {url: {env: SLACK_WEBHOOK_URL}}
  - on: [run_failed, run_succeeded]
    email: {to: ["ops@example.com"]}
"""


def test_the_issues_rules_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    webhook, slack, email = notify_rules.load_file(path)
    assert webhook.on == (notify.Event.RUN_FAILED, notify.Event.TASK_FAILED,
                          notify.Event.DEADLINE_MISSED)
    assert webhook.target == {"url": "https://hooks.example.com/x",
                              "secret": {"env": "HOOK_SECRET"}}
    assert (slack.channel, slack.target) == ("slack", {"url": {"env": "SLACK_WEBHOOK_URL"}})
    assert (email.channel, email.target) == ("email", {"to": ["ops@example.com"]})
    assert [r.line for r in (webhook, slack, email)] == [2, 4, 6]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("notify:\n  - on: [run_failed]\n    webhook: {url: x}\n  - on: [nope]\n"
     "    slack: {url: y}\n", 4, "unknown event 'nope'"),
    ("notify:\n  - on: [run_failed]\n    webhook: {url: x}\n    slack: {url: y}\n", 2,
     "exactly one channel"),
    ("notify:\n  - on: [run_failed]\n", 2, "exactly one channel"),
    ("notify:\n  - on: []\n    webhook: {url: x}\n", 2, "on"),
    ("notify:\n  - on: [run_failed]\n    email: {to: [not-an-address]}\n", 2,
     "not an email address"),
    ("notify:\n  - on: [run_failed]\n    webhook: {url: {env: 'BAD NAME'}}\n", 2, "env"),
    ("notify:\n  - on: [run_failed]\n    webhook: {url: x, retries: 3}\n", 2, "retries"),
    ("notify:\n  - on: [task_succeeded]\n    webhook: {url: x}\n", 2, "callbacks"),
    ("rules: []\n", 1, "one key, 'notify'"),
    ("notify: {on: run_failed}\n", None, "must be a list"),
])
def test_a_bad_rule_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                    line: int | None, words: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(errors.DagError) as caught:
        notify_rules.load_file(path)
    assert caught.value.line == line
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_missing_or_hostile_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.DagError, match="cannot read the rules file"):
        notify_rules.load_file(tmp_path / "absent.yaml")
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text('a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
                      + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                                for p, c in zip("abcdefgh", "bcdefghi", strict=True))
                      + "notify: *i\n")
    with pytest.raises(errors.DagError, match="alias"):
        notify_rules.load_file(laughs)
    big = tmp_path / "big.yaml"
    big.write_text("notify: []\n" + "#" * 2_000_000)
    with pytest.raises(errors.DagError):
        notify_rules.load_file(big)


def test_an_empty_rules_file_has_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("# nothing yet\n")
    assert notify_rules.load_file(path) == ()


YAML_DAG = """\
id: y
deadline: "06:00"
timezone: Europe/Zurich
on_failure: mypkg.alerts:page
notify:
  - on: [run_failed]
    webhook: {url: "http://hooks.test/x"}
tasks:
  - id: a
    python: mypkg.etl:extract
    on_retry: mypkg.alerts:note
    on_success: mypkg.alerts:note
"""


def test_a_yaml_dag_declares_rules_deadline_and_callbacks() -> None:
    spec = yaml_dags.load_text(YAML_DAG)
    alerts = CompiledDag.of(spec).plan.alerts
    assert alerts is not None and alerts.deadline == "06:00"
    assert alerts.callback(notify.Event.RUN_FAILED) == "mypkg.alerts:page"
    assert alerts.callback(notify.Event.RUN_SUCCEEDED) is None
    assert alerts.callback(notify.Event.TASK_RETRIED, "a") == "mypkg.alerts:note"
    assert alerts.callback(notify.Event.TASK_FAILED, "a") is None
    assert [r.channel for r in alerts.rules] == ["webhook"]


def test_a_yaml_dags_bad_rule_names_its_line() -> None:
    bad = YAML_DAG.replace("webhook: {url: \"http://hooks.test/x\"}", "pager: {}")
    with pytest.raises(errors.DagError) as caught:
        yaml_dags.load_text(bad, source="y.yaml")
    assert caught.value.line == 6 and "y.yaml:6" in str(caught.value)
    for wrong, words in (('deadline: "25:00"', "deadline"),
                         ("on_failure: not a path", "on_failure")):
        with pytest.raises(errors.DagError, match=words):
            yaml_dags.load_text(YAML_DAG.replace('deadline: "06:00"', wrong)
                                if "deadline" in wrong
                                else YAML_DAG.replace("on_failure: mypkg.alerts:page", wrong))


def page(alert: object) -> None:
    """A callback for the Python DAG below."""


@task(on_failure=page)
def extract() -> int:
    return 1


def test_a_python_dag_declares_them_too() -> None:
    @dag(notify=[{"on": ["run_failed"], "email": {"to": ["ops@example.com"]}}],
         deadline=3600, on_success=page)
    def py_alerts() -> None:
        extract()

    alerts = CompiledDag.of(py_alerts.spec).plan.alerts
    assert alerts is not None and alerts.deadline == 3600
    here = f"{__name__}:page"
    assert alerts.callback(notify.Event.RUN_SUCCEEDED) == here
    assert alerts.callback(notify.Event.TASK_FAILED, "extract") == here
    with pytest.raises(errors.DagError, match="module-level function"):
        @dag(on_failure=lambda alert: None)
        def lambda_alerts() -> None:
            extract()


def test_a_dag_without_alerts_keeps_its_version() -> None:
    """DAG versions hashed before alerts existed stay the same (no new keys at default)."""
    plain = yaml_dags.load_text("id: p\ntasks:\n  - id: a\n    python: m:f\n")
    compiled = CompiledDag.of(plain)
    assert compiled.plan.alerts is None
    assert not {"notify", "deadline", "callbacks"} & set(compiled.data)
    assert "callbacks" not in compiled.data["tasks"][0]


ZURICH = ZoneInfo("Europe/Zurich")


@pytest.mark.parametrize(("logical", "want"), [
    # a nightly run at 02:00 must be done by 06:00 the same morning
    (dt.datetime(2026, 3, 1, 2, 0, tzinfo=ZURICH), dt.datetime(2026, 3, 1, 6, 0, tzinfo=ZURICH)),
    # after 06:00, the next morning's
    (dt.datetime(2026, 3, 1, 7, 0, tzinfo=ZURICH), dt.datetime(2026, 3, 2, 6, 0, tzinfo=ZURICH)),
    # across the spring-forward night, still 06:00 wall time
    (dt.datetime(2026, 3, 28, 23, 0, tzinfo=ZURICH),
     dt.datetime(2026, 3, 29, 6, 0, tzinfo=ZURICH)),
])
def test_a_time_of_day_deadline_is_the_next_one_in_the_dags_zone(
        logical: dt.datetime, want: dt.datetime) -> None:
    got = notify.deadline_at("06:00", started=logical + dt.timedelta(minutes=5),
                             logical_time=logical, zone=ZURICH)
    assert got == want.astimezone(dt.UTC)


def test_a_seconds_deadline_counts_from_the_start() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert notify.deadline_at(90, started=start, logical_time=None, zone=ZURICH) == (
        start + dt.timedelta(seconds=90))
