"""YAML DAG files: what they compile to, and errors that name the file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.model import params, spec

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "example_yaml.yaml"


def write(tmp_path: Path, text: str, name: str = "dag.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> tuple[Path, errors.DagError]:
    path = write(tmp_path, text)
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_file(path)
    return path, info.value


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_example_yaml() -> None:
    s = yaml_dags.load_file(EXAMPLE)
    assert s.id == "example_yaml"
    assert s.source == str(EXAMPLE)
    assert s.description.startswith("Square 1..n")
    assert s.params == {"n": spec.ParamSpec(type="integer", default=5, required=False,
                                            description="how many numbers")}
    assert [t.id for t in s.tasks] == ["extract", "square", "total", "announce"]
    extract, square, total, announce = s.tasks
    assert (extract.kind, extract.callable) == ("python", "example:extract")
    assert extract.kwargs == {"n": spec.ParamArg(param="n")}
    assert square.args == (spec.ItemArg(task="extract"),)
    assert (square.retries, square.timeout) == (1, 60)
    assert total.dependencies == ("square",)
    assert announce.kind == "shell"
    assert announce.command == 'echo "squared $ORCH_PARAM_N numbers"'
    assert announce.upstream == ("total",)
    assert announce.line == line_of(EXAMPLE, "- id: announce")


FULL = """
    id: full
    description: every feature
    params:
      day: {type: string, default: "2026-01-01", description: the day}
      n: {default: 3}
      ratio: {default: 0.5}
      on_: {default: true}
      tags: {default: [a]}
      conf: {default: {k: v}}
      nothing: {default: null}
      required_one: {type: integer}
      loose: {}
    tasks:
      - id: extract
        python: mypkg.etl:extract
        kwargs: {day: {param: day}, limit: 10}
      - id: load
        python: mypkg.etl:Loader.load
        args:
          - {task: extract}
          - [1, {task: extract}]
          - {task: extract, other: 1}
          - {task: 5}
          - {x: 1}
          - null
          - "text"
        retries: 2
        retry_backoff: 0.5
        retry_backoff_max: 10
        retry_jitter: false
        timeout: 30.5
        queue: heavy
      - id: notify
        shell: echo loaded
        upstream: load
      - id: last
        shell: "true"
        upstream: [notify, extract]
"""


def test_all_task_kinds_and_argument_forms(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    s = yaml_dags.load_file(path)
    assert s.description == "every feature"
    extract, load, notify, last = s.tasks
    assert extract.kwargs == {"day": spec.ParamArg(param="day"),
                              "limit": spec.ValueArg(value=10)}
    assert load.callable == "mypkg.etl:Loader.load"
    assert load.args == (
        spec.TaskArg(task="extract"),
        spec.ValueArg(value=[1, {"task": "extract"}]),   # nested refs are literals
        spec.ValueArg(value={"task": "extract", "other": 1}),
        spec.ValueArg(value={"task": 5}),
        spec.ValueArg(value={"x": 1}),
        spec.ValueArg(value=None),
        spec.ValueArg(value="text"),
    )
    assert load.dependencies == ("extract",)
    assert (load.retries, load.retry_backoff, load.retry_backoff_max, load.retry_jitter,
            load.timeout, load.queue) == (2, 0.5, 10, False, 30.5, "heavy")
    assert (notify.kind, notify.command, notify.upstream) == ("shell", "echo loaded", ("load",))
    assert last.upstream == ("notify", "extract")
    assert [t.line for t in s.tasks] == [
        line_of(path, f"- id: {t.id}") for t in s.tasks]


def test_param_types_inferred_from_defaults(tmp_path: Path) -> None:
    s = yaml_dags.load_file(write(tmp_path, FULL))
    types = {name: (p.type, p.required, p.default) for name, p in s.params.items()}
    assert types == {
        "day": ("string", False, "2026-01-01"),
        "n": ("integer", False, 3),
        "ratio": ("number", False, 0.5),
        "on_": ("boolean", False, True),
        "tags": ("array", False, ["a"]),
        "conf": ("object", False, {"k": "v"}),
        "nothing": ("any", False, None),
        "required_one": ("integer", True, None),
        "loose": ("any", True, None),
    }
    assert s.params["day"].description == "the day"
    assert params.validate(s, {"required_one": 1, "loose": "x"})["n"] == 3


def test_load_text_default_source() -> None:
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_text("id: x\ntasks:\n  - id: a\n    shell: echo\n    bogus: 1\n")
    assert str(info.value).startswith("<yaml>:3: ")


def test_empty_args_and_kwargs_allowed(tmp_path: Path) -> None:
    s = yaml_dags.load_file(write(tmp_path, """
        id: x
        tasks:
          - {id: a, python: "m:f", args: null, kwargs: null}
          - {id: b, python: "m:f", args: [], kwargs: {}}
    """))
    assert all(t.args == () and t.kwargs == {} for t in s.tasks)


# --- errors --------------------------------------------------------------------------------

def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            shell: echo: hi
    """)
    # libyaml says "... allowed in this context", PyYAML's own parser "... allowed here"
    assert str(exc).startswith(f"{path}:4: invalid YAML: mapping values are not allowed ")
    assert (exc.source, exc.line) == (str(path), 4)


def test_unclosed_flow_sequence(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\ntasks: [\n  {id: a, shell: echo}\n")
    assert str(exc).startswith(f"{path}:4: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_document_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path, exc = load_error(tmp_path, text)
    assert str(exc) == f"{path}:1: a DAG file must be a mapping with 'id' and 'tasks'"


def test_unknown_task_key_names_file_and_line_of_the_task(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            shell: echo
          - id: b
            shell: echo
            retry: 3
    """)
    assert str(exc) == f"{path}:5: DAG 'x': task 'b': unknown key(s) ['retry']"
    assert exc.line == line_of(path, "- id: b")


def test_unknown_keys_that_yaml_reads_as_booleans(tmp_path: Path) -> None:
    # YAML 1.1 reads `on:` as the key True; mixing it with string keys must not crash.
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            shell: echo
            on: push
            when: later
    """)
    assert f"{path}:3: DAG 'x': task 'a': unknown key(s) [True, 'when']" == str(exc)
    _, exc = load_error(tmp_path, "id: x\non: 1\nfoo: 2\ntasks: [{id: a, shell: echo}]\n")
    assert "unknown key(s) [True, 'foo']" in str(exc)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\nowner: ops\ntasks: [{id: a, shell: echo}]\n")
    assert str(exc) == (f"{path}: DAG 'x': unknown key(s) ['owner']; allowed: "
                        "['catchup', 'deadline', 'description', 'id', 'max_active_runs', "
                        "'max_active_tasks', 'max_catchup', 'notify', 'on_failure', "
                        "'on_retry', 'on_success', 'overlap', 'params', 'schedule', "
                        "'tasks', 'timeout', 'timezone']")


def test_a_bad_schedule_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\nschedule: daily\ntasks: [{id: a, shell: echo}]\n")
    assert str(path) in str(exc) and "5 fields" in str(exc)
    _, exc = load_error(tmp_path, "id: x\nschedule: '@daily'\nparams: {n: {type: integer}}\n"
                                  "tasks: [{id: a, shell: echo}]\n")
    assert "needs a default for every param" in str(exc)


def test_unknown_param_key(tmp_path: Path) -> None:
    _, exc = load_error(tmp_path, """
        id: x
        params:
          n: {type: integer, min: 1}
        tasks: [{id: a, shell: echo}]
    """)
    assert "param 'n': unknown key(s) ['min']" in str(exc)


def test_param_must_be_mapping(tmp_path: Path) -> None:
    _, exc = load_error(tmp_path, "id: x\nparams:\n  n: 5\ntasks: [{id: a, shell: echo}]\n")
    assert "param 'n' must be a mapping" in str(exc)


def test_params_must_be_mapping(tmp_path: Path) -> None:
    _, exc = load_error(tmp_path, "id: x\nparams: [n]\ntasks: [{id: a, shell: echo}]\n")
    assert "'params' must be a mapping" in str(exc)


def test_python_and_shell_both_given(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            python: m:f
            shell: echo
    """)
    assert str(exc) == (f"{path}:3: DAG 'x': task 'a': give exactly one of 'python' "
                        "(module:function), 'shell' (a command), 'sql' (a statement) or "
                        "'http' (a request)")


def test_neither_python_nor_shell(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\ntasks:\n  - id: a\n    retries: 1\n")
    assert str(exc).startswith(f"{path}:3: DAG 'x': task 'a': give exactly one of")


def test_missing_id(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "tasks: [{id: a, shell: echo}]\n")
    assert str(exc) == f"{path}: missing 'id'"


@pytest.mark.parametrize("tasks", ["", "tasks: []", "tasks: {a: 1}"])
def test_tasks_must_be_non_empty_list(tmp_path: Path, tasks: str) -> None:
    _, exc = load_error(tmp_path, f"id: x\n{tasks}\n")
    assert "'tasks' must be a non-empty list" in str(exc)


def test_task_must_be_mapping(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\ntasks:\n  - {id: a, shell: echo}\n  - oops\n")
    assert str(exc) == f"{path}:4: DAG 'x': tasks[1] must be a mapping"


def test_args_must_be_list(tmp_path: Path) -> None:
    _, exc = load_error(tmp_path, "id: x\ntasks:\n  - {id: a, python: 'm:f', args: {task: b}}\n")
    assert "'args' must be a list and 'kwargs' a mapping" in str(exc)


def test_missing_task_id_reports_line(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, "id: x\ntasks:\n  - shell: echo\n")
    assert str(exc).startswith(f"{path}:3: DAG 'x': tasks.0.id: Field required")


def test_field_error_reports_line(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            shell: echo
          - id: b
            shell: echo
            retries: -1
    """)
    assert str(exc).startswith(f"{path}:5: DAG 'x': tasks.1.retries: ")


def test_cycle_in_yaml(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - {id: a, shell: echo, upstream: c}
          - {id: b, python: "m:f", args: [{task: a}]}
          - {id: c, shell: echo, upstream: [b]}
    """)
    assert isinstance(exc, errors.CycleError)
    assert set(exc.cycle) == {"a", "b", "c"}
    assert str(exc) == f"{path}: DAG 'x': cycle: {' -> '.join(exc.cycle)}"


def test_yaml_validation_errors_carry_file_and_line(tmp_path: Path) -> None:
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            shell: echo
          - id: a
            shell: echo
    """)
    assert str(exc) == f"{path}:5: DAG 'x': duplicate task id 'a'"
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            python: m:f
            kwargs: {v: {param: missing}}
    """)
    assert str(exc) == f"{path}:3: DAG 'x': task 'a' uses unknown param 'missing'"
    path, exc = load_error(tmp_path, """
        id: x
        tasks:
          - id: a
            python: nocolon
    """)
    assert "python tasks need callable 'module:function', got 'nocolon'" in str(exc)
    _, exc = load_error(tmp_path, "id: x\ntasks:\n  - {id: a, shell: ''}\n")
    assert "task 'a': shell tasks need a command" in str(exc)
    _, exc = load_error(tmp_path, """
        id: x
        tasks:
          - {id: a, shell: echo, retry_backoff: 60, retry_backoff_max: 1}
    """)
    assert "retry_backoff_max is below retry_backoff" in str(exc)
    _, exc = load_error(tmp_path, "id: x\ntasks:\n  - {id: a, shell: echo, upstream: [zz]}\n")
    assert "task 'a' has unknown upstream 'zz'" in str(exc)
    _, exc = load_error(tmp_path, "id: x.y\ntasks:\n  - {id: a, shell: echo}\n")
    assert "invalid DAG id 'x.y'" in str(exc)
    _, exc = load_error(tmp_path, "id: x\ntasks:\n  - {id: 'a.b', shell: echo}\n")
    assert "invalid task id 'a.b'" in str(exc)
    _, exc = load_error(tmp_path, "id: x\nparams: {'n-1.5': {}}\ntasks: [{id: a, shell: e}]\n")
    assert "invalid param name 'n-1.5'" in str(exc)


def test_max_tasks(tmp_path: Path) -> None:
    path = write(tmp_path, "id: x\ntasks:\n" + "".join(
        f"  - {{id: t{i}, shell: echo}}\n" for i in range(5)))
    with pytest.raises(errors.DagError, match="has 5 tasks, more than the limit 4"):
        yaml_dags.load_file(path, max_tasks=4)
    assert len(yaml_dags.load_file(path, max_tasks=5).tasks) == 5
