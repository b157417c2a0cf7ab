"""discovery.load: a folder of .py and .yaml DAG files; broken files do not hide good ones."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.execution import local, operators
from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_imports(tmp_path: Path) -> Iterator[None]:
    """discovery puts folders on sys.path and imports files by stem: undo both."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    yield
    sys.path[:] = saved_path
    roots = (str(tmp_path.resolve()), str(ROOT / "dags"))
    for name in set(sys.modules) - saved_modules:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if file.startswith(roots):
            del sys.modules[name]
    operators.resolve.cache_clear()


def uid() -> str:
    return uuid.uuid4().hex[:10]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path.resolve()


def py_dag(dag_id: str, body: str = "double(seed(n))") -> str:
    return f"""
        from orchestrator import dag, task

        @task
        def seed(n: int) -> int:
            return n + 1

        @task
        def double(x: int) -> int:
            return 2 * x

        @dag(id="{dag_id}")
        def the_dag(n: int = 1) -> None:
            {body}
    """


def test_good_dags_load_beside_broken_files(tmp_path: Path) -> None:
    u = uid()
    folder = tmp_path / "dags"
    good = write(folder, f"a_good_{u}.py", py_dag(f"py_{u}") + "\n        alias = the_dag\n")
    broken = write(folder, f"b_broken_{u}.py", 'raise RuntimeError("boom at import")\n')
    cyclic = write(folder, "c_cycle.yaml", """
        id: cyclic
        tasks:
          - {id: a, shell: echo, upstream: b}
          - {id: b, shell: echo, upstream: a}
    """)
    dup = write(folder, "d_dup.yaml", f"""
        id: py_{u}
        tasks: [{{id: a, shell: echo}}]
    """)
    flow = write(folder, "e_flow.yaml", f"""
        id: yaml_{u}
        params: {{n: {{default: 4}}}}
        tasks:
          - {{id: s, python: "a_good_{u}:seed", kwargs: {{n: {{param: n}}}}}}
          - {{id: d, python: "a_good_{u}:double", args: [{{task: s}}]}}
          - {{id: say, shell: "echo n=$ORCH_PARAM_N", upstream: d}}
    """)
    write(folder, f"_private_{u}.py", "raise RuntimeError('never imported')\n")
    write(folder, ".hidden.yaml", "not: [valid\n")
    write(folder, "notes.txt", "ignored\n")
    write(folder / "sub", "nested.yaml", "not: [valid\n")

    bag = discovery.load(folder)

    assert bag.path == folder.resolve()
    assert str(folder.resolve()) in sys.path
    assert set(bag.dags) == {f"py_{u}", f"yaml_{u}"}
    assert set(bag.errors) == {str(broken), str(cyclic), str(dup)}
    assert str(bag.errors[str(broken)]) == (
        f"{broken}:1: failed to import: RuntimeError: boom at import")
    cycle_error = bag.errors[str(cyclic)]
    assert isinstance(cycle_error, errors.CycleError)
    assert cycle_error.source == str(cyclic)
    assert set(cycle_error.cycle) == {"a", "b"}
    assert str(bag.errors[str(dup)]) == (
        f"{dup}: DAG id 'py_{u}' is also defined in {good}")
    assert bag.dags[f"py_{u}"].spec.source == str(good)
    assert bag.dags[f"yaml_{u}"].spec.source == str(flow)

    # the loaded DAGs really run, and YAML can name functions in the folder
    assert local.run_in_process(bag.get(f"py_{u}").spec, {"n": 3}) == {"seed": 4, "double": 8}
    assert local.run_in_process(bag.get(f"yaml_{u}").spec) == {"s": 5, "d": 10, "say": "n=4"}


def test_unknown_dag_lists_known_dags_and_broken_files(tmp_path: Path) -> None:
    u = uid()
    write(tmp_path, f"one_{u}.py", py_dag(f"zeta_{u}"))
    write(tmp_path, "two.yaml", f"id: alpha_{u}\ntasks: [{{id: a, shell: echo}}]\n")
    broken = write(tmp_path, "three.yaml", "id: [\n")
    bag = discovery.load(tmp_path)
    with pytest.raises(errors.UnknownDag) as info:
        bag.get("nope")
    assert str(info.value) == (
        f"unknown DAG 'nope' in {tmp_path.resolve()} (known: alpha_{u}, zeta_{u}); "
        f"files that failed to load: {broken}")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, errors.NotFound)


def test_unknown_dag_in_empty_folder(tmp_path: Path) -> None:
    bag = discovery.load(tmp_path)
    assert bag.dags == {}
    assert bag.errors == {}
    with pytest.raises(errors.UnknownDag, match=r"\(known: none\)$"):
        bag.get("x")


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    bag = discovery.load(missing)
    assert list(bag.errors) == [str(missing.resolve())]
    assert "DAG folder does not exist" in str(bag.errors[str(missing.resolve())])
    assert bag.dags == {}


def test_module_name_taken_by_an_imported_module(tmp_path: Path) -> None:
    u = uid()
    shadow = write(tmp_path, "json.py", py_dag(f"json_{u}"))
    builtin = write(tmp_path, "sys.py", py_dag(f"sys_{u}"))
    write(tmp_path, f"fine_{u}.py", py_dag(f"fine_{u}"))
    bag = discovery.load(tmp_path)
    assert set(bag.dags) == {f"fine_{u}"}
    assert str(bag.errors[str(shadow)]) == (
        f"{shadow}: module name 'json' is taken by {json.__file__}; rename the file")
    assert "module name 'sys' is taken by a built-in module" in str(bag.errors[str(builtin)])
    assert sys.modules["json"] is json


def test_module_name_taken_by_another_dag_folder(tmp_path: Path) -> None:
    u = uid()
    first = write(tmp_path / "one", f"same_{u}.py", py_dag(f"first_{u}"))
    second = write(tmp_path / "two", f"same_{u}.py", py_dag(f"second_{u}"))
    assert set(discovery.load(tmp_path / "one").dags) == {f"first_{u}"}
    bag = discovery.load(tmp_path / "two")
    assert bag.dags == {}
    assert f"module name 'same_{u}' is taken by {first}" in str(bag.errors[str(second)])
    # loading the first folder again is fine: the module is its own file
    again = discovery.load(tmp_path / "one")
    assert set(again.dags) == {f"first_{u}"}
    assert again.errors == {}


def test_invalid_python_dag_is_keyed_by_its_file(tmp_path: Path) -> None:
    u = uid()
    cyclic = write(tmp_path, f"cyc_{u}.py", py_dag(
        f"cyc_{u}", "a = seed(1); b = double(a); b >> a"))
    bad_option = write(tmp_path, f"opt_{u}.py", """
        from orchestrator import task

        @task(bogus=1)
        def f() -> None: ...
    """)
    syntax = write(tmp_path, f"syn_{u}.py", "def broken(:\n")
    bag = discovery.load(tmp_path)
    assert bag.dags == {}
    exc = bag.errors[str(cyclic)]
    assert isinstance(exc, errors.CycleError)
    assert exc.source == str(cyclic)
    assert " -> ".join(exc.cycle) in {"seed -> double -> seed", "double -> seed -> double"}
    assert str(bag.errors[str(bad_option)]).startswith(
        f"{bad_option}:3: unknown task option(s) ['bogus']")
    assert str(bag.errors[str(syntax)]).startswith(f"{syntax}:1: failed to import: SyntaxError")


def test_same_dag_imported_by_another_file_is_not_a_duplicate(tmp_path: Path) -> None:
    u = uid()
    write(tmp_path, f"a_{u}.py", py_dag(f"shared_{u}"))
    write(tmp_path, f"b_{u}.py", f"from a_{u} import the_dag\nsame = the_dag\n")
    bag = discovery.load(tmp_path)
    assert bag.errors == {}
    assert set(bag.dags) == {f"shared_{u}"}


def test_max_tasks_applies_to_every_file(tmp_path: Path) -> None:
    u = uid()
    big_py = write(tmp_path, f"big_{u}.py", py_dag(f"big_{u}", "double(seed(double(n)))"))
    big_yaml = write(tmp_path, "big.yaml", "id: y\ntasks:\n" + "".join(
        f"  - {{id: t{i}, shell: echo}}\n" for i in range(3)))
    write(tmp_path, "small.yaml", "id: s\ntasks:\n  - {id: t, shell: echo}\n")
    bag = discovery.load(tmp_path, max_tasks=2)
    assert set(bag.dags) == {"s"}
    assert "has 3 tasks, more than the limit 2" in str(bag.errors[str(big_py)])
    assert "has 3 tasks, more than the limit 2" in str(bag.errors[str(big_yaml)])


def test_loading_twice_is_stable(tmp_path: Path) -> None:
    u = uid()
    write(tmp_path, f"m_{u}.py", py_dag(f"m_{u}"))
    first = discovery.load(tmp_path)
    second = discovery.load(tmp_path)
    assert first.dags == second.dags
    assert second.errors == {}
    assert sys.path.count(str(tmp_path.resolve())) == 1


def test_example_dags_load_and_run() -> None:
    bag = discovery.load(ROOT / "dags")
    assert bag.errors == {}
    assert {"example", "example_yaml"} <= set(bag.dags)
    n = 10
    squares = [i * i for i in range(1, n + 1)]
    out = local.run_in_process(bag.get("example").spec, {"n": n})
    assert out["total"] == sum(squares)
    assert out["largest"] == max(squares)
    assert out["report"] == f"sum of squares {sum(squares)}, largest {max(squares)}"
    out = local.run_in_process(bag.get("example_yaml").spec)
    assert out["total"] == sum(i * i for i in range(1, 6))
    assert out["announce"] == "squared 5 numbers"
    nightly, report = bag.get("nightly_orders").spec, bag.get("orders_report").spec
    assert (nightly.schedule, nightly.timezone) == ("30 2 * * *", "Europe/Zurich")
    assert nightly.task("load").outlets == ("warehouse/orders",)
    assert report.schedule == {"assets": ["warehouse/orders"], "when": "any"}
    assert local.run_in_process(nightly)["load"] == 42
    assert local.run_in_process(report)["summarize"].startswith("report over 0 update")


def test_load_configured_takes_the_folder_and_limits_from_the_settings(tmp_path: Path) -> None:
    small = write(tmp_path, "small.yaml", "id: small\ntasks: [{id: t, shell: echo}]\n")
    big = write(tmp_path, "big.yaml", "id: big\ntasks: [{id: t, shell: echo}]\n" + "#" * 64)
    dags = Settings.from_env({"ORCH_DAGS_PATH": str(tmp_path), "ORCH_MAX_TASKS": "3",
                              "ORCH_DAG_IMPORT_TIMEOUT": "7.5",
                              "ORCH_MAX_DAG_FILE_BYTES": str(small.stat().st_size)}).dags
    bag = discovery.load_configured(dags)
    assert (bag.path, bag.max_tasks, bag.import_timeout, bag.max_file_bytes) == (
        tmp_path.resolve(), 3, 7.5, small.stat().st_size)
    assert set(bag.dags) == {"small"}
    assert "more than the limit of" in str(bag.errors[str(big)])
    other = tmp_path / "other"
    other.mkdir()
    assert discovery.load_configured(dags, other).path == other.resolve()
