"""Import Python DAG files in a child process first, so that a file that ends the
interpreter (``os._exit``, a crash) or hangs is reported instead of taking down, or
holding forever, the process that loads the folder.

One child imports every file of a load in turn and reports on a pipe before and after
each. If it dies on a file, or a file takes longer than the import timeout, that file is
marked bad and a fresh child goes on with the rest. Neither can be caught in-process,
so only the files the child got through are then imported for real; a file that merely
raised is among those (importing it again raises the same error, reported as usual).
The child's own output is discarded: the real import prints it again.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 60.0
"""Seconds the child may take to start (not counted against any file)."""

_BOOT = ("import json, sys; request = json.loads(sys.stdin.readline()); "
         "sys.path[:] = request['path']; "
         "from orchestrator.authoring import isolation; isolation.child(request)")


def check(files: Sequence[tuple[Path, str]], folder: Path, timeout: float) -> dict[Path, str]:
    """Import ``files`` (path, module name), in order, in child processes; return why
    each file that ended or outlasted its child is bad."""
    bad: dict[Path, str] = {}
    pending = list(files)
    while pending:
        outcome = _run_child(pending, folder, timeout)
        if outcome is None:
            break
        index, reason = outcome
        if index is None:  # the child never started: no file can be vouched for
            bad.update((f, reason) for f, _ in pending)
            break
        bad[pending[index][0]] = reason
        pending = pending[index + 1:]
    return bad


def _run_child(files: list[tuple[Path, str]], folder: Path,
               timeout: float) -> tuple[int | None, str] | None:
    """None when the child imported every file; else (the file at fault, or None if the
    child did not start, and why)."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_fd,),
            start_new_session=True)  # its own group: it and anything it starts end together
    except OSError as exc:
        os.close(read_fd)
        return None, f"could not start a process to check the import in: {exc}"
    finally:
        os.close(write_fd)
    # the folder goes on the child's path only after its own imports: a DAG file named
    # like one of them must not replace it
    path = [p for p in sys.path if isinstance(p, str) and p != str(folder)]
    request = {"path": path, "folder": str(folder),
               "files": [[str(f), name] for f, name in files], "fd": write_fd}
    reports = _Reports(read_fd)
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at startup: seen below
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.close()
        return _follow(proc, reports, len(files), timeout)
    finally:
        reports.close()
        _end(proc)


def _follow(proc: subprocess.Popen[bytes], reports: _Reports, n: int,
            timeout: float) -> tuple[int | None, str] | None:
    started = False
    at = 0  # the file being imported, or next
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            line = reports.next(deadline)
        except TimeoutError:
            if not started:
                return None, f"the process checking imports did not start in {STARTUP_TIMEOUT:g} s"
            if at >= n:
                return None  # every file was imported: what hung came after
            return at, f"took longer than {timeout:g} s to import (ORCH_DAG_IMPORT_TIMEOUT)"
        if line is None:
            if not started:
                return None, "the process checking imports failed to start: " + _why(proc)
            return (at, _died(proc)) if at < n else None
        word, _, arg = line.partition(" ")
        if word == "ready":
            started = True
        elif word == "start" and arg.isdigit():
            at = int(arg)
        elif word == "done" and arg.isdigit():
            at = int(arg) + 1
        elif word == "end":
            return None
        deadline = time.monotonic() + timeout


def _died(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(5.0)
    except subprocess.TimeoutExpired:  # alive, but it closed the pipe it reports on
        return "importing it closed the import check's report pipe"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"importing it killed the interpreter ({signal.Signals(-code).name})"
        return f"importing it killed the interpreter (signal {-code})"
    return (f"importing it ended the interpreter (exit status {code}): a DAG file must not "
            "call os._exit or crash the process")


def _why(proc: subprocess.Popen[bytes]) -> str:
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        return "it closed its report pipe"
    assert proc.stderr is not None
    lines = [ln for ln in proc.stderr.read(65536).decode(errors="replace").splitlines() if ln]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's group (anything a DAG file started there too), then reap it; its
    pid cannot be reused before it is reaped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdin, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class _Reports:
    """Lines from the child's report pipe, each awaited until a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def next(self, deadline: float) -> str | None:
        """The next line, None once the child closed the pipe; TimeoutError at deadline."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                raise TimeoutError
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def close(self) -> None:
        self.selector.close()
        os.close(self.fd)


def child(request: dict[str, Any]) -> None:
    """The child's side: import each file, reporting before and after."""
    # Importing this module imported the orchestrator package, which every DAG file
    # imports: its time is not counted against the first file.
    out = os.fdopen(request["fd"], "w", buffering=1)
    folder = request["folder"]
    if folder not in sys.path:
        sys.path.insert(0, folder)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    out.write("ready\n")
    for i, (file, name) in enumerate(request["files"]):
        out.write(f"start {i}\n")
        with contextlib.suppress(BaseException):  # raising is no harm here: only dying is
            _execute(name, Path(file))
        out.write(f"done {i}\n")
    out.write("end\n")
    out.flush()
    os._exit(0)  # threads a DAG file started must not keep the child alive


def _execute(name: str, file: Path) -> None:
    """Run the file's current source as module ``name`` (as an import would, but never
    from a cached .pyc that a quick edit can leave stale)."""
    if name in sys.modules:
        return  # another file imported it already
    found = importlib.util.spec_from_file_location(name, file)
    assert found is not None
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    try:
        exec(compile(file.read_bytes(), str(file), "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
