"""Task instance ids: a mapped task's instances are ``name[i]``. Pure."""

from __future__ import annotations


def map_instance_id(task_id: str, index: int) -> str:
    """The task instance id of item ``index`` of mapped task ``task_id``: ``task_id[index]``
    (brackets are not allowed in task ids, so it never collides with one)."""
    return f"{task_id}[{index}]"


def split_task_id(task_id: str) -> tuple[str, int | None]:
    """``('name', 3)`` for a mapped instance ``name[3]``, ``(task_id, None)`` otherwise."""
    if task_id.endswith("]"):
        base, sep, index = task_id[:-1].partition("[")
        if sep and index.isdigit():
            return base, int(index)
    return task_id, None
