"""isolation.check: files that end or outlast the child process are named, with why; the
rest of the folder is still checked, by a fresh child."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.authoring import isolation


@pytest.fixture(autouse=True, params=["fork", "spawn"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with a forked child and with a fresh interpreter (what a process with
    more than one thread gets)."""
    if request.param == "fork":
        # Earlier tests in the same session may leave idle background threads (a client's
        # wake-up listener) that make can_fork() say no; the fork path is what is tested.
        monkeypatch.setattr(isolation, "can_fork", lambda: True)
    else:
        monkeypatch.setattr(isolation, "can_fork", lambda: False)
    return str(request.param)


def write(folder: Path, name: str, text: str) -> tuple[Path, str]:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path, path.stem


def test_each_bad_file_is_named_and_the_rest_still_checked(tmp_path: Path) -> None:
    marks = tmp_path / "imported"
    marks.mkdir()

    def good(name: str) -> tuple[Path, str]:
        return write(tmp_path, name, f"open({str(marks / name)!r}, 'w').close()\n")

    files = [
        good("a_good.py"),
        write(tmp_path, "b_exit.py", "import os\nos._exit(0)\n"),
        good("c_good.py"),
        write(tmp_path, "d_hang.py", "import time\ntime.sleep(3600)\n"),
        write(tmp_path, "e_kill.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
        write(tmp_path, "f_raises.py", "raise SystemExit(3)\n"),
        write(tmp_path, "g_imports_the_hang.py", "import d_hang\n"),
        good("h_good.py"),
    ]
    bad = isolation.check(files, tmp_path, timeout=2.0)
    by_name = {p.name: why for p, why in bad.items()}
    assert by_name == {
        "b_exit.py": "importing it ended the interpreter (exit status 0): a DAG file must not "
                     "call os._exit or crash the process",
        "d_hang.py": "took longer than 2 s to import (ORCH_DAG_IMPORT_TIMEOUT)",
        "e_kill.py": "importing it killed the interpreter (SIGKILL)",
        # a fresh child does not have d_hang: importing it hangs again
        "g_imports_the_hang.py": "took longer than 2 s to import (ORCH_DAG_IMPORT_TIMEOUT)",
    }  # raising is not the child's to report: the real import reports it
    assert sorted(os.listdir(marks)) == ["a_good.py", "c_good.py", "h_good.py"]
    assert str(tmp_path) not in sys.path  # the child's path, not this process's


def test_what_a_file_prints_cannot_pass_for_a_report(tmp_path: Path) -> None:
    path, name = write(tmp_path, "noisy.py", "print('ready')\nprint('end')\nimport os\n"
                                             "os.write(1, b'end\\n')\nos._exit(5)\n")
    bad = isolation.check([(path, name)], tmp_path, timeout=30.0)
    assert bad == {path: "importing it ended the interpreter (exit status 5): a DAG file "
                         "must not call os._exit or crash the process"}


def test_a_module_this_process_has_is_checked_from_its_current_source(
        tmp_path: Path) -> None:
    """A changed file is checked as it is now, not as the copy a forked child inherits."""
    path, name = write(tmp_path, f"changes_{os.getpid()}.py", "X = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__(name)
        assert module.X == 1
        path.write_text("import os\nos._exit(4)\n", encoding="utf-8")
        bad = isolation.check([(path, name)], tmp_path, timeout=30.0)
        assert bad == {path: "importing it ended the interpreter (exit status 4): a DAG "
                             "file must not call os._exit or crash the process"}
    finally:
        sys.path.remove(str(tmp_path))
        del sys.modules[name]
