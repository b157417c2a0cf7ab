"""isolation.check: files that end or outlast the child process are named, with why; the
rest of the folder is still checked, by a fresh child."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator.authoring import isolation


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
