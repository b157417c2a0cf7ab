"""How one task body runs, whatever runs it (a Celery worker or ``Dag.test``).

Task kinds: ``python`` (a function by import path, called with its bound arguments),
``shell`` (a command line in a minimal environment: run params and identity arrive as
``ORCH_*`` variables, with what the task declares under ``env``; the result is its
standard output), and ``sql`` and ``http`` (``orchestrator.kinds``: a statement or a
request on a named connection, with the task's bound values).
"""

from __future__ import annotations

import codecs
import functools
import importlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any, TextIO

from orchestrator import errors
from orchestrator.execution import secret_refs, task_context
from orchestrator.model import spec
from orchestrator.model.secret_spec import SecretArg

KIND_MODULES = {"sql": "orchestrator.kinds.sql", "http": "orchestrator.kinds.http"}
"""Imported by name when a task of the kind first runs: they pull in SQLAlchemy and httpx,
which authoring and testing a python-only DAG should not (and this layer must not)."""

KindRunner = Callable[[spec.TaskSpec, dict[str, Any], task_context.TaskContext,
                       Callable[[SecretArg], str]], Any]


@functools.cache
def kind_runner(kind: str) -> KindRunner:
    return importlib.import_module(KIND_MODULES[kind]).run  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=4096)
def resolve(path: str) -> Callable[..., Any]:
    """Import ``module:qualname``; unwrap ``@task`` functions to the plain function."""
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise errors.DagError(f"cannot import callable {path!r}: {exc}") from exc
    fn = getattr(obj, "fn", obj)
    if not callable(fn):
        raise errors.DagError(f"{path!r} is not callable")
    return fn  # type: ignore[no-any-return]


NO_ITEM: Any = object()


def _secret(ref: SecretArg, secrets: Mapping[SecretArg, str] | None) -> str:
    # Read already by a worker (which masks it); read here by Dag.test.
    return secrets[ref] if secrets is not None and ref in secrets else secret_refs.resolve(ref)


def _value(arg: spec.Arg, params: Mapping[str, Any], upstream: Mapping[str, Any], item: Any,
           ctx: task_context.TaskContext, secrets: Mapping[SecretArg, str] | None) -> Any:
    if isinstance(arg, SecretArg):
        return _secret(arg, secrets)
    if isinstance(arg, spec.ContextArg):
        # Read from the context the worker built from the run's row: the same values
        # context() gives the task, so an argument and a context() call never disagree.
        return getattr(ctx, arg.context)
    if isinstance(arg, spec.TaskArg):
        return upstream[arg.task]
    if isinstance(arg, spec.ItemArg):
        if item is NO_ITEM:
            raise errors.OrchestratorError(f"mapped task run without its item ({arg.task})")
        return item
    if isinstance(arg, spec.ParamArg):
        return params[arg.param]
    return arg.value


def call(task: spec.TaskSpec, params: Mapping[str, Any], upstream: Mapping[str, Any],
         ctx: task_context.TaskContext, item: Any = NO_ITEM,
         secrets: Mapping[SecretArg, str] | None = None) -> Any:
    """Run ``task`` with its arguments bound from ``params`` and upstream results (and, for
    an instance of a mapped task, its ``item``); ``secrets``: its ``{secret: ...}``
    references as the worker read them (read here when None)."""
    token = task_context.bind(ctx)
    try:
        if task.kind == "shell":
            return _shell(task, ctx, secrets)
        if task.kind in KIND_MODULES:
            values = {k: _value(a, params, upstream, item, ctx, secrets)
                      for k, a in task.kwargs.items()}
            return kind_runner(task.kind)(task, values, ctx, lambda r: _secret(r, secrets))
        fn = resolve(task.callable or "")
        args = [_value(a, params, upstream, item, ctx, secrets) for a in task.args]
        kwargs = {k: _value(a, params, upstream, item, ctx, secrets)
                  for k, a in task.kwargs.items()}
        return fn(*args, **kwargs)
    finally:
        task_context.unbind(token)


INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
"""The only variables of the worker's environment a shell task gets (those it has): where
programs are, the user's home, the locale, the time zone, the temporary folder."""


def shell_env(task: spec.TaskSpec, ctx: task_context.TaskContext,
              secrets: Mapping[SecretArg, str] | None = None) -> dict[str, str]:
    """A shell task's whole environment. Never the worker's own: that holds its settings,
    database and broker passwords among them, and the command's output is stored. A
    ``{secret: ...}`` value under ``env`` is the secret itself (the task asked for it)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update({k: v if isinstance(v, str) else _secret(v, secrets)
                for k, v in task.env.items()})
    env.update({"ORCH_DAG_ID": ctx.dag_id, "ORCH_RUN_ID": ctx.run_id,
                "ORCH_TASK_ID": ctx.task_id, "ORCH_ATTEMPT": str(ctx.attempt)})
    for name, when in (("ORCH_LOGICAL_TIME", ctx.logical_time),
                       ("ORCH_INTERVAL_START", ctx.interval_start),
                       ("ORCH_INTERVAL_END", ctx.interval_end)):
        if when is not None:
            env[name] = when.isoformat()
    for name, value in ctx.params.items():
        env[f"ORCH_PARAM_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def _pump(pipe: IO[bytes], echo: TextIO, kept: list[str]) -> None:
    """Copy a command's output to ``echo`` as it comes (the attempt's log, in a worker),
    keeping it all for the result or the error."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    read = getattr(pipe, "read1", pipe.read)
    while True:
        try:
            data = read(65536)
        except (OSError, ValueError):  # closed under us: the command was killed
            return
        text = decoder.decode(data, final=not data)
        if text:
            kept.append(text)
            echo.write(text)
        if not data:
            return


def _shell(task: spec.TaskSpec, ctx: task_context.TaskContext,
           secrets: Mapping[SecretArg, str] | None) -> str:
    """Run the command, its stdout and stderr streamed live to ours (so a worker's log
    of the attempt has both, whatever the outcome); the result is stdout, stripped."""
    proc = subprocess.Popen(task.command or "", shell=True, env=shell_env(task, ctx, secrets),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    # Writers bound to this thread's streams: the readers' output is this attempt's.
    readers = [threading.Thread(target=_pump, args=(proc.stdout, _bound(sys.stdout), out),
                                daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, _bound(sys.stderr), err),
                                daemon=True)]
    for r in readers:
        r.start()
    try:
        returncode = proc.wait()
        for r in readers:
            r.join()
    except BaseException:  # a time limit or a termination: the command must not outlive it
        proc.kill()
        proc.wait()
        for r in readers:
            r.join(timeout=1.0)  # what it wrote before the kill, unless a child holds on
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    if returncode != 0:
        raise errors.ShellCommandFailed(returncode, _lines(err))
    return _lines(out).strip()


def _bound(stream: TextIO) -> TextIO:
    """The stream to write to from another thread on this thread's behalf (a worker's
    capture routes by thread; any other stream is itself)."""
    bind = getattr(stream, "for_this_thread", None)
    return bind() if callable(bind) else stream


def _lines(parts: list[str]) -> str:
    # Universal newlines, as text-mode pipes gave: results and errors read the same.
    return "".join(parts).replace("\r\n", "\n").replace("\r", "\n")
