"""Alert rules as files write them: a DAG's ``notify:`` list (YAML or ``@dag(notify=)``)
and the global rules file (``ORCH_NOTIFY_FILE``), checked at load with file and line."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import errors
from orchestrator.authoring import yaml_loader
from orchestrator.model import notify

CALLBACK_KEYS = ("on_failure", "on_success", "on_retry")

Fail = Callable[[str, int | None], errors.DagError]


def callbacks_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The callbacks a DAG or task mapping names (``on_failure: module:function``)."""
    return {k: data[k] for k in CALLBACK_KEYS if data.get(k) is not None}


def compile_rules(rules: Any, lines: Sequence[int], fail: Fail) -> list[dict[str, Any]]:
    """Each rule validated, so an error names the rule's line; returned with it."""
    if not isinstance(rules, list):
        raise fail("'notify' must be a list of rules (on: [...] and one channel)", None)
    out: list[dict[str, Any]] = []
    for i, rule in enumerate(rules):
        line = lines[i] if i < len(lines) else None
        if not isinstance(rule, dict):
            raise fail(f"notify[{i}] must be a mapping", line)
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        rule = {("on" if k is True else k): v for k, v in rule.items()}
        try:
            notify.Rule.model_validate(rule)
        except ValidationError as exc:
            raise fail(f"notify[{i}]: {_first(exc)}", line) from None
        out.append({**rule, "line": line})
    return out


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "enum" and first["loc"][:1] == ("on",):
        return (f"on: unknown event {first['input']!r}; one of: "
                f"{', '.join(notify.RULE_EVENTS)}")
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("str", "EnvRef",
                                                                               "FileRef")))
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def load_file(path: Path, *, max_bytes: int = 1024 * 1024) -> tuple[notify.Rule, ...]:
    """The global rules: a YAML file with one key, ``notify``. Raises DagError naming the
    file and line of what is wrong (the same checks and limits as DAG files)."""
    source = str(path)

    def fail(msg: str, line: int | None) -> errors.DagError:
        return errors.DagError(msg, source=source, line=line)

    try:
        text = yaml_loader.read(path, max_bytes)
    except OSError as exc:
        raise fail(f"cannot read the rules file: {exc.strerror}", None) from None
    data, root = yaml_loader.parse(text, source=source)
    if data is None:
        return ()
    if not isinstance(data, dict) or set(data) - {"notify"}:
        raise fail("a rules file is a mapping with one key, 'notify'", 1)
    from orchestrator.authoring.yaml_dags import item_lines

    rules = compile_rules(data.get("notify") or [], item_lines(root, "notify"), fail)
    return tuple(notify.Rule.model_validate(r) for r in rules)
