"""Import Python DAG files in a child process first, so that a file that ends the
interpreter (``os._exit``, a crash) or hangs is reported instead of taking down, or
holding forever, the process that loads the folder.

One child imports every file of a load in turn and reports on a pipe before and after
each. If it dies on a file, or a file takes longer than the import timeout, that file is
marked bad and a fresh child goes on with the rest. Neither can be caught in-process,
so only the files the child got through are then imported for real; a file that merely
raised is among those (importing it again raises the same error, reported as usual).
The child's own output is discarded: the real import prints it again.

The child is a fork of this process when it has a single thread (cheap: nothing is
imported again, and it sees the modules this process has, as the real import will);
otherwise a fresh interpreter, since a fork can inherit a lock another thread held.
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
import types
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


def can_fork() -> bool:
    """Whether this process may fork safely: one thread, native ones counted too."""
    try:
        return hasattr(os, "fork") and len(os.listdir("/proc/self/task")) == 1
    except OSError:  # no /proc: threads cannot be counted
        return False


class _Child:
    """The child process, forked or spawned, and how it ended."""

    def __init__(self, files: list[tuple[Path, str]], folder: Path, write_fd: int) -> None:
        request: dict[str, Any] = {"files": [[str(f), name] for f, name in files],
                                   "fd": write_fd, "folder": str(folder)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.code: int | None = None
        if can_fork():
            self.pid = _fork(request)
            return
        # the folder goes on a fresh child's path only after its own imports: a DAG
        # file named like one of them must not replace it
        request["path"] = [p for p in sys.path if isinstance(p, str) and p != str(folder)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_fd,),
            start_new_session=True)  # its own group: it and anything it starts end together
        self.pid = self.proc.pid
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at startup: seen later
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.close()

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code (negative: the signal), None if unknown; TimeoutError if it
        is still running after ``timeout`` seconds."""
        if self.proc is not None:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.code is None:
            try:
                pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: its status is lost
                return None
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
            elif deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            else:
                time.sleep(0.01)  # only while a failed child is being looked at
        return self.code

    def startup_error(self) -> str:
        code = self.wait(5.0)
        if self.proc is not None and self.proc.stderr is not None:
            text = self.proc.stderr.read(65536).decode(errors="replace")
            lines = [ln for ln in text.splitlines() if ln]
            if lines:
                return lines[-1]
        return f"exit status {code}"

    def end(self) -> None:
        """Kill the child's group (anything a DAG file started there too), then reap
        it: its pid cannot be reused before it is reaped."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait()
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


def _fork(request: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        try:
            os.setsid()  # its own group, as a spawned child has
            child(request)
        finally:
            os._exit(70)
    return pid


def _run_child(files: list[tuple[Path, str]], folder: Path,
               timeout: float) -> tuple[int | None, str] | None:
    """None when the child imported every file; else (the file at fault, or None if the
    child did not start, and why)."""
    read_fd, write_fd = os.pipe()
    try:
        proc = _Child(files, folder, write_fd)
    except OSError as exc:
        os.close(read_fd)
        return None, f"could not start a process to check the import in: {exc}"
    finally:
        os.close(write_fd)
    reports = _Reports(read_fd)
    try:
        return _follow(proc, reports, len(files), timeout)
    finally:
        reports.close()
        proc.end()


def _follow(proc: _Child, reports: _Reports, n: int,
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
                return None, ("the process checking imports failed to start: "
                              + proc.startup_error())
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


def _died(proc: _Child) -> str:
    try:
        code = proc.wait(5.0)
    except TimeoutError:  # alive, but it closed the pipe it reports on
        return "importing it closed the import check's report pipe"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"importing it killed the interpreter ({signal.Signals(-code).name})"
        return f"importing it killed the interpreter (signal {-code})"
    status = "" if code is None else f" (exit status {code})"
    return (f"importing it ended the interpreter{status}: a DAG file must not call "
            "os._exit or crash the process")


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
    """The child's side: import each file, reporting before and after. A spawned child
    imported the orchestrator package (which every DAG file imports) to get here, so
    its time is not counted against the first file."""
    out = os.fdopen(request["fd"], "w", buffering=1)
    if request["folder"] not in sys.path:
        sys.path.insert(0, request["folder"])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    inherited = dict(sys.modules)  # a forked child's copies of this process's modules
    out.write("ready\n")
    for i, (file, name) in enumerate(request["files"]):
        out.write(f"start {i}\n")
        with contextlib.suppress(BaseException):  # raising is no harm here: only dying is
            if name not in sys.modules or sys.modules[name] is inherited.get(name):
                _execute(name, Path(file), inherited.get(name))
            # else a file before it imported it here
        out.write(f"done {i}\n")
    out.write("end\n")
    out.flush()
    os._exit(0)  # threads a DAG file started must not keep the child alive


def _execute(name: str, file: Path, old: types.ModuleType | None) -> None:
    """Run the file's current source as module ``name`` (as an import would, but never
    from a cached .pyc that a quick edit can leave stale); if it fails, the module is
    what it was before, as after a failed import."""
    found = importlib.util.spec_from_file_location(name, file)
    assert found is not None
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    try:
        exec(compile(file.read_bytes(), str(file), "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        if old is None:
            del sys.modules[name]
        else:
            sys.modules[name] = old
        raise
