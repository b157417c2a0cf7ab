"""What a task's arguments are bound to at run time: an upstream result, a run param, a
literal, one item of a mapped-over list, a value of the run's context, or a secret."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.model import secret_spec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskArg(_Frozen):
    """The return value of an upstream task."""

    kind: Literal["task"] = "task"
    task: str


class ParamArg(_Frozen):
    """A run parameter."""

    kind: Literal["param"] = "param"
    param: str


class ValueArg(_Frozen):
    """A JSON literal fixed in the DAG definition."""

    kind: Literal["value"] = "value"
    value: Any


class ItemArg(_Frozen):
    """One item of an upstream task's list result: the task is mapped over that list, one
    task instance per item."""

    kind: Literal["item"] = "item"
    task: str


ContextName = Literal["logical_time", "interval_start", "interval_end", "payload", "run_id",
                      "dag_id"]


class ContextArg(_Frozen):
    """A value of the run's context, as ``context()`` gives it to the task."""

    kind: Literal["context"] = "context"
    context: ContextName


Arg = Annotated[TaskArg | ParamArg | ValueArg | ItemArg | ContextArg | secret_spec.SecretArg,
                Field(discriminator="kind")]
