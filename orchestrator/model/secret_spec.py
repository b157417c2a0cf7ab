"""Secrets in a DAG's definition: secret params and ``{secret: ...}`` arguments.

Neither puts a secret in the definition, which is stored in the database with every
version: a secret param has no default (its value comes with each run, sealed by
:mod:`orchestrator.model.sealed` before it is written), and a :class:`SecretArg` holds
only where the worker reads the value at run time (an environment variable of the
worker, or a file on its machine). Nothing here does I/O.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from orchestrator import errors

if TYPE_CHECKING:
    from orchestrator.model import spec as spec_

SOURCES = ("env", "file")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # spec.ENV_NAME_PATTERN (spec imports us)


class Secret(str):
    """Annotate a ``@dag`` function's parameter with ``Secret`` to make it a secret run
    param: its value is stored encrypted, shown as ``***``, and masked in what the task
    prints, returns and raises. The task receives the plain string."""

    __slots__ = ()


def source_problem(ref: Any) -> str | None:
    """Why ``ref`` (what follows ``secret:``) is not ``{env: NAME}`` or ``{file: PATH}``."""
    if not isinstance(ref, Mapping) or len(ref) != 1:
        given = sorted(map(str, ref)) if isinstance(ref, Mapping) else type(ref).__name__
        return (f"{{secret: ...}} takes exactly one of {{env: NAME}} or {{file: PATH}}, "
                f"got {given}")
    (source, where), = ref.items()
    if source not in SOURCES:
        return (f"unknown secret source {str(source)!r}: a secret comes from 'env' (a "
                "variable of the worker's environment) or 'file' (a path on its machine)")
    if not isinstance(where, str) or not where or "\0" in where:
        return f"{{secret: {{{source}: ...}}}} needs a name or a path, got {where!r}"
    if source == "env" and not _ENV_NAME.fullmatch(where):
        return f"secret env name {where!r} is not a variable name"
    if source == "env" and where.upper().startswith("ORCH_"):
        return (f"secret env name {where!r}: ORCH_* variables are the orchestrator's own "
                "settings, never a task's")
    if source == "file" and not where.startswith("/"):
        return f"secret file {where!r} must be an absolute path (workers run anywhere)"
    return None


class SecretArg(BaseModel):
    """A secret the worker reads when the task runs: an environment variable of the
    worker (``env``) or a file on its machine (``file``). Only the reference is stored
    and sent; the value is masked in everything the attempt writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["secret"] = "secret"
    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretArg:
        given = {k: v for k, v in (("env", self.env), ("file", self.file)) if v is not None}
        problem = source_problem(given)
        if problem:
            raise ValueError(problem)
        return self

    def describe(self) -> str:
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


def _env_value(value: Any) -> Any:
    if isinstance(value, str | SecretArg):
        return value
    if isinstance(value, dict):
        try:
            return SecretArg.model_validate(value)
        except PydanticValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"]) from None
    # pydantic's own words for a str field, as before secrets could be env values
    raise PydanticCustomError("string_type", "Input should be a valid string")


if TYPE_CHECKING:
    EnvValue = str | SecretArg
else:
    EnvValue = Annotated[Any, PlainValidator(_env_value)]
"""A shell task's env value: a string, or a secret the worker reads."""


def secret(*, env: str | None = None, file: str | None = None) -> Any:
    """A secret argument of a task, read by the worker when it runs: ``secret(env="NAME")``
    or ``secret(file="/run/secrets/name")``. Pass it to a task in a ``@dag`` body, or make
    it a parameter's default in the ``@task`` function."""
    given = {k: v for k, v in (("env", env), ("file", file)) if v is not None}
    problem = source_problem(given)
    if problem:
        raise errors.DagError(problem)
    return SecretArg(env=env, file=file)


def yaml_arg(ref: Any) -> dict[str, Any]:
    """``{secret: ref}`` of a YAML file as an argument; ValueError naming the problem."""
    problem = source_problem(ref)
    if problem:
        raise ValueError(problem)
    return {"kind": "secret", **dict(ref)}


def is_secret_annotation(annotation: Any) -> bool:
    """``Secret``, or a union holding it (``Secret | None``)."""
    if annotation is Secret:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return Secret in typing.get_args(annotation)
    return False


def secret_defaults(signature: inspect.Signature, args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> dict[str, SecretArg]:
    """The parameters a call leaves to a ``secret(...)`` default, by name."""
    bound = signature.bind_partial(*args, **kwargs).arguments
    return {name: p.default for name, p in signature.parameters.items()
            if isinstance(p.default, SecretArg) and name not in bound}


class SecretFlag(BaseModel):
    """The base of ParamSpec: ``secret``, left out of the stored form when False so that
    versions hashed before it existed stay the same."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    secret: bool = False

    @model_serializer(mode="wrap")
    def _leave_out_secret(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("secret") is False:
            del data["secret"]
        return data


def check(dag: spec_.DagSpec, where: dict[str, Any]) -> None:
    """A secret param has no default; a shell task takes secrets through ``env`` (it has
    no arguments to pass them in)."""
    for name, p in dag.params.items():
        if p.secret and p.default is not None:
            raise errors.DagError(
                f"param {name!r} is secret, so it cannot have a default: the DAG's definition "
                "is stored in the database. Give it when submitting, or read it in the "
                "worker with {secret: {env: NAME}}", **where)
    for t in dag.tasks:
        if t.kind == "shell" and any(isinstance(a, SecretArg)
                                     for a in (*t.args, *t.kwargs.values())):
            raise errors.DagError(
                f"task {t.id!r}: a shell task takes no arguments; give it the secret in its "
                "env (env: {NAME: {secret: {env: VARIABLE}}})", **{**where, "line": t.line})
