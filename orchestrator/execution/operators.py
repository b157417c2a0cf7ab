"""How one task body runs, whatever runs it (a Celery worker or ``Dag.test``).

Task kinds: ``python`` (a function by import path, called with its bound arguments) and
``shell`` (a command line in a minimal environment: run params and identity arrive as
``ORCH_*`` variables, with what the task declares under ``env``; the result is its
standard output).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator import errors
from orchestrator.execution import task_context
from orchestrator.model import spec


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


def _value(arg: spec.TaskArg | spec.ParamArg | spec.ValueArg | spec.ItemArg,
           params: Mapping[str, Any], upstream: Mapping[str, Any], item: Any) -> Any:
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
         ctx: task_context.TaskContext, item: Any = NO_ITEM) -> Any:
    """Run ``task`` with its arguments bound from ``params`` and upstream results (and, for
    an instance of a mapped task, its ``item``)."""
    token = task_context.bind(ctx)
    try:
        if task.kind == "shell":
            return _shell(task, ctx)
        fn = resolve(task.callable or "")
        args = [_value(a, params, upstream, item) for a in task.args]
        kwargs = {k: _value(a, params, upstream, item) for k, a in task.kwargs.items()}
        return fn(*args, **kwargs)
    finally:
        task_context.unbind(token)


INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
"""The only variables of the worker's environment a shell task gets (those it has): where
programs are, the user's home, the locale, the time zone, the temporary folder."""


def shell_env(task: spec.TaskSpec, ctx: task_context.TaskContext) -> dict[str, str]:
    """A shell task's whole environment. Never the worker's own: that holds its settings,
    database and broker passwords among them, and the command's output is stored."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(task.env)
    env.update({"ORCH_DAG_ID": ctx.dag_id, "ORCH_RUN_ID": ctx.run_id,
                "ORCH_TASK_ID": ctx.task_id, "ORCH_ATTEMPT": str(ctx.attempt)})
    for name, value in ctx.params.items():
        env[f"ORCH_PARAM_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def _shell(task: spec.TaskSpec, ctx: task_context.TaskContext) -> str:
    proc = subprocess.run(task.command or "", shell=True, env=shell_env(task, ctx),
                          capture_output=True, text=True, check=False)
    # Echo the command's output so it lands in the worker's log for this attempt.
    if proc.stdout:
        sys.stdout.write(proc.stdout)
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise errors.ShellCommandFailed(proc.returncode, proc.stderr)
    return proc.stdout.strip()
