"""Hostile DAG files: one bad file never crashes, hangs or hides the others.

Real files in a temporary folder. A file that ends the interpreter (``os._exit``) is only
ever loaded by a process started here (``orchestrator dags validate``/``list``): if the
isolation failed, it would end that process, not the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.authoring import discovery, yaml_dags
from orchestrator.execution import local
from orchestrator.model import spec
from tests.security import hostile_dags
from tests.security.hostile_dags import IMPORT_TIMEOUT, Folder, good_py, reported
from tests.support import ROOT

pytestmark = [pytest.mark.security]


@pytest.fixture
def own_imports() -> Iterator[Callable[[Path], None]]:
    yield from hostile_dags.own_imports()


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    base.update(ORCH_DATABASE_URL="sqlite:///:memory:",
                ORCH_DAG_IMPORT_TIMEOUT=str(IMPORT_TIMEOUT), **env)
    # the bound is for a broken build only: a hang here is what the test looks for
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=240, check=False)


def test_every_failure_is_its_files_error_and_the_good_dags_load(
        tmp_path: Path, own_imports: Callable[[Path], None]) -> None:
    folder = Folder(tmp_path / "dags")
    own_imports(folder.path)
    folder.add_good()
    folder.add_catchable()
    folder.add_hang()
    bag = discovery.load(folder.path, import_timeout=IMPORT_TIMEOUT)
    folder.check({k: str(v) for k, v in bag.errors.items()})
    assert all(isinstance(e, errors.DagError) and e.source == k for k, e in bag.errors.items())
    assert {k: d.spec.source for k, d in bag.dags.items()} == {
        i: str(p) for i, p in folder.good.items()}
    assert local.run_in_process(bag.get(f"py_{folder.u}").spec, {"n": 2}) == {"seed": 3}


def test_dags_validate_lists_every_bad_file_and_exits_1(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "dags")
    folder.add_good()
    folder.add_catchable()
    folder.add_exit(f"a_os_exit_{folder.u}.py")  # first: the child dies before the rest
    folder.add_hang()
    folder.add_exit()
    proc = cli("dags", "validate", str(folder.path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    folder.check(reported(proc.stderr))
    assert sorted(proc.stdout.splitlines()) == sorted(
        f"ok {i} (1 tasks) {p}" for i, p in folder.good.items())


@pytest.mark.parametrize("kind", ["exit", "hang"])
def test_dags_validate_on_one_file_that_ends_or_hangs_the_process(tmp_path: Path,
                                                                  kind: str) -> None:
    folder = Folder(tmp_path / "dags")
    folder.add_good()
    folder.add_exit() if kind == "exit" else folder.add_hang()
    (bad,) = folder.bad
    proc = cli("dags", "validate", str(bad))
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    folder.check(reported(proc.stderr))
    good = folder.good[f"py_{folder.u}"]
    proc = cli("dags", "validate", str(good))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"ok py_{folder.u} (1 tasks) {good}\n"


def test_dags_validate_on_a_file_with_no_dag_exits_1(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "dags")
    helper = folder.write("helpers.py", "X = 1\n")
    proc = cli("dags", "validate", str(helper))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"invalid {helper}: defines no DAG")


def test_dags_list_shows_the_good_dags_and_names_the_bad_files(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "dags")
    folder.add_good()
    folder.add_exit()
    folder.add_hang()
    folder.expect("dup.yaml", "id: d\nid: e\n", ":2", "duplicate key 'id'")
    proc = cli("dags", "list", "--json", ORCH_DAGS_PATH=str(folder.path))
    assert proc.returncode == 0, proc.stderr
    assert {d["id"]: d["source"] for d in json.loads(proc.stdout)} == {
        i: str(p) for i, p in folder.good.items()}
    folder.check(reported(proc.stderr))


def test_one_child_per_load_and_a_refresh_runs_only_changed_files(
        tmp_path: Path, own_imports: Callable[[Path], None]) -> None:
    """Each import of a counted file logs its name and the importing process's pid."""
    folder = Folder(tmp_path / "dags")
    own_imports(folder.path)
    log = tmp_path / "imports.log"

    def counted(name: str, dag_id: str) -> Path:
        return folder.write(f"{name}.py", (
            f"import os\nwith open({str(log)!r}, 'a') as f:\n"
            f"    f.write(f'{name} {{os.getpid()}}\\n')\n\n" + good_py(dag_id)))

    def imports() -> list[tuple[str, int]]:
        return [(name, int(pid)) for name, pid in
                (line.split() for line in log.read_text().splitlines())]

    a, b = f"a_{folder.u}", f"b_{folder.u}"
    counted(a, a)
    b_file = counted(b, b)
    me = os.getpid()
    bag = discovery.load(folder.path)
    first = imports()
    child = first[0][1]
    assert child != me
    assert first == [(a, child), (b, child), (a, me), (b, me)]  # one child for the folder
    assert bag.refresh() is False
    assert imports() == first
    b_file.write_text(b_file.read_text() + "\n# edited\n", encoding="utf-8")
    assert bag.refresh() is True
    (name, second_child), last = imports()[4:]
    assert (name, last) == (b, (b, me)) and second_child not in (me, child)
    assert set(bag.dags) == {a, b} and bag.errors == {}


def test_a_python_file_over_the_size_cap_is_not_imported(
        tmp_path: Path, own_imports: Callable[[Path], None]) -> None:
    folder = Folder(tmp_path / "dags")
    own_imports(folder.path)
    marker = tmp_path / "ran"
    big = folder.write(f"big_{folder.u}.py",
                       f"open({str(marker)!r}, 'w').close()\n" + "#" * 2000 + "\n")
    bag = discovery.load(folder.path, max_file_bytes=1000)
    assert str(bag.errors[str(big)]) == (
        f"{big}: is {big.stat().st_size} bytes, more than the limit of 1000 "
        "(ORCH_MAX_DAG_FILE_BYTES)")
    assert not marker.exists()


@pytest.mark.parametrize("bad", ["abc\n", "abc\n\n", "\nabc", "a b", "abc\r"])
def test_ids_are_matched_whole(tmp_path: Path, bad: str) -> None:
    task = {"id": "t", "kind": "shell", "command": "echo"}
    for where, dag in [("DAG id", {"id": bad, "tasks": [task]}),
                       ("task id", {"id": "d", "tasks": [{**task, "id": bad}]}),
                       ("param name", {"id": "d", "tasks": [task],
                                       "params": {bad: {"type": "string", "default": "x"}}})]:
        with pytest.raises(errors.DagError, match=f"invalid {where} {bad!r}".replace("\\", "\\\\")):
            spec.build(dag)
    path = tmp_path / "d.yaml"
    path.write_text(f"id: {json.dumps(bad)}\ntasks: [{{id: t, shell: echo}}]\n",
                    encoding="utf-8")
    with pytest.raises(errors.DagError, match="invalid DAG id"):
        yaml_dags.load_file(path)
