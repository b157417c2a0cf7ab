"""A DAG folder of hostile files beside good ones, and what each bad file's error says.

Python module names carry a suffix of their own: the tests that load such a folder in
their own process must not meet another test's modules in ``sys.modules``.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

IMPORT_TIMEOUT = 2
"""ORCH_DAG_IMPORT_TIMEOUT for folders with a file that hangs."""

BIG = 50 * 1024 * 1024
_REPORTED = re.compile(r"invalid (/\S+?\.(?:py|yaml|yml))(?::\d+)?: .*")


def laughs() -> str:
    """A 1 KB "billion laughs" YAML: nine levels of nine aliases each."""
    lines = ["id: laughs", "tasks: [{id: a, shell: echo}]", "params:",
             '  p0: {default: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]}']
    lines += [f"  p{i}: {{default: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]}}"
              for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def good_py(dag_id: str) -> str:
    return (f"from orchestrator import dag, task\n\n\n@task\ndef seed(n: int) -> int:\n"
            f"    return n + 1\n\n\n@dag(id={dag_id!r})\ndef the_dag(n: int = 1) -> None:\n"
            f"    seed(n)\n")


def reported(stderr: str) -> dict[str, str]:
    """Each ``invalid PATH[:LINE]: ...`` line, by path; nothing else may be printed."""
    out: dict[str, str] = {}
    for line in stderr.splitlines():
        found = _REPORTED.fullmatch(line)
        assert found is not None, stderr
        out[found[1]] = line.removeprefix("invalid ")
    return out


class Folder:
    """``good``: DAG id -> file; ``bad``: file -> (start of its error, text it must hold)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.u = uuid.uuid4().hex[:8]
        self.good: dict[str, Path] = {}
        self.bad: dict[Path, tuple[str, str]] = {}

    def write(self, name: str, content: str | bytes) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def add_good(self) -> None:
        self.good[f"py_{self.u}"] = self.write(f"good_{self.u}.py", good_py(f"py_{self.u}"))
        self.good[f"yaml_{self.u}"] = self.write(
            f"good_{self.u}.yaml", f"id: yaml_{self.u}\ntasks:\n  - {{id: say, shell: echo hi}}\n")

    def expect(self, name: str, content: str | bytes, where: str, says: str) -> None:
        """A bad file; ``where`` is ``":LINE"`` or ``""`` (its error names no line)."""
        path = self.write(name, content)
        self.bad[path] = (f"{path}{where}: ", says)

    def add_catchable(self) -> None:
        """Bad files whose failure a process could catch itself."""
        u = self.u
        self.expect(f"syntax_{u}.py", "def broken(:\n", ":1", "failed to import: SyntaxError")
        self.expect(f"imports_{u}.py", f"import no_such_module_{u}\n", ":1",
                    f"failed to import: ModuleNotFoundError: No module named 'no_such_module_{u}'")
        self.expect(f"exits_{u}.py", "import sys\nsys.exit(3)\n", ":2",
                    "failed to import: SystemExit: 3")
        self.expect(f"interrupts_{u}.py", "raise KeyboardInterrupt\n", ":1",
                    "failed to import: KeyboardInterrupt")
        self.expect(f"recurses_{u}.py", "def f():\n    return f()\n\n\nf()\n", ":2",
                    "failed to import: RecursionError: maximum recursion depth exceeded")
        self.expect("latin1.yaml", "id: x\ntasks:\n  - {id: a, shell: echo café}\n".encode(
            "latin-1"), ":3", "is not UTF-8 text: byte 0xe9")
        self.expect("deep.yaml", "id: deep\ntasks: [{id: a, shell: echo}]\nv: "
                    + "[" * 10_000 + "]" * 10_000 + "\n", ":3", "nest")  # libyaml's or ours
        self.expect("laughs.yaml", laughs(), ":9", "aliases expand to more than 100000 nodes")
        self.expect("dup.yaml", "id: dup\ntasks: [{id: a, shell: echo}]\nid: dup2\n", ":3",
                    "invalid YAML: duplicate key 'id'")
        self.expect("newline_id.yaml", 'id: "abc\\n"\ntasks: [{id: a, shell: echo}]\n', "",
                    "invalid DAG id 'abc\\n'")
        big = self.write("big.yaml", b"")
        with big.open("wb") as f:
            f.truncate(BIG)  # sparse: 50 MB by its size
        self.bad[big] = (f"{big}: ", f"is {BIG} bytes, more than the limit of 4194304 "
                                     "(ORCH_MAX_DAG_FILE_BYTES)")

    def add_hang(self) -> None:
        self.expect(f"hangs_{self.u}.py", "import time\ntime.sleep(3600)\n", "",
                    f"took longer than {IMPORT_TIMEOUT} s to import (ORCH_DAG_IMPORT_TIMEOUT)")

    def add_exit(self, name: str | None = None) -> None:
        """A file that ends the interpreter: never to be imported by the test process."""
        self.expect(name or f"os_exit_{self.u}.py", "import os\nos._exit(0)\n", "",
                    "importing it ended the interpreter (exit status 0)")

    def check(self, problems: dict[str, str]) -> None:
        """``problems`` (file -> error text) names exactly the bad files, each rightly."""
        assert set(problems) == {str(p) for p in self.bad}, problems
        for path, (start, says) in self.bad.items():
            text = problems[str(path)]
            assert text.startswith(start), text
            assert says in text, text


def own_imports() -> Iterator[Callable[[Path], None]]:
    """For a fixture: undo what loading a folder does to this process: its place on sys.path and the
    modules imported from it."""
    folders: list[str] = []
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    yield lambda p: folders.append(str(p.resolve()))
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if file.startswith(tuple(folders)):
            del sys.modules[name]
