"""orchestrator/schema/dag.schema.json agrees with the YAML loader."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.model import spec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(yaml_dags.SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_ok(doc: Any) -> bool:
    return VALIDATOR.is_valid(doc)


def loader_ok(doc: Any) -> bool:
    try:
        yaml_dags.load_text(yaml.safe_dump(doc))
    except errors.DagError:
        return False
    return True


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert "yaml-language-server: $schema=" in SCHEMA["$comment"]


def test_schema_ships_where_the_loader_says() -> None:
    assert yaml_dags.SCHEMA_PATH == ROOT / "orchestrator" / "schema" / "dag.schema.json"


@pytest.mark.parametrize("path", sorted((ROOT / "dags").glob("*.y*ml")), ids=lambda p: p.name)
def test_example_yaml_validates(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    errs = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert errs == []


def test_schema_mirrors_the_loader() -> None:
    defs = SCHEMA["$defs"]
    assert defs["id"]["pattern"] == spec.ID_PATTERN
    assert set(SCHEMA["properties"]) == yaml_dags._TOP_KEYS
    assert set(defs["task"]["properties"]) == yaml_dags._TASK_KEYS
    assert set(defs["param"]["properties"]) == yaml_dags._PARAM_KEYS
    assert defs["param"]["properties"]["type"]["enum"] == list(typing.get_args(spec.ParamType))
    assert defs["task"]["properties"]["retries"]["maximum"] == spec.MAX_RETRIES
    assert defs["task"]["properties"]["timeout"]["maximum"] == spec.MAX_TIMEOUT
    assert SCHEMA["additionalProperties"] is False
    assert defs["task"]["additionalProperties"] is False
    assert defs["param"]["additionalProperties"] is False


def base(**task: Any) -> dict[str, Any]:
    return {"id": "d", "tasks": [{"id": "a", **task}]}


VALID = {
    "shell": base(shell="echo hi"),
    "python": base(python="pkg.mod:Cls.fn"),
    "everything": {
        "id": "d", "description": "x", "params": {
            "n": {"type": "integer", "default": 1, "description": "n"}, "m": {}},
        "tasks": [
            {"id": "a", "python": "m:f", "args": [1, "s", None, [1, 2], {"x": 1},
                                                  {"param": "n"}],
             "kwargs": {"k": {"param": "m"}, "l": {"a": 1, "b": 2}}},
            {"id": "b", "shell": "echo", "upstream": "a", "retries": 3, "retry_backoff": 0.5,
             "retry_backoff_max": 10, "retry_jitter": False, "timeout": 1.5, "queue": "q"},
            {"id": "c", "python": "m:g", "args": [{"task": "a"}], "upstream": ["b"]},
        ]},
    "null_optionals": {"id": "d", "description": None, "params": None,
                       "tasks": [{"id": "a", "python": "m:f", "args": None, "kwargs": None,
                                  "timeout": None, "queue": None}]},
}

INVALID = {
    "python_and_shell": base(python="m:f", shell="echo"),
    "neither": base(retries=1),
    "unknown_task_key": base(shell="echo", retry=3),
    "unknown_top_key": {**base(shell="echo"), "owner": "data-team"},
    "unknown_param_key": {**base(shell="echo"), "params": {"n": {"min": 1}}},
    "bad_param_type": {**base(shell="echo"), "params": {"n": {"type": "int"}}},
    "bad_param_name": {**base(shell="echo"), "params": {"a.b": {}}},
    "bad_task_id": {"id": "d", "tasks": [{"id": "a.b", "shell": "echo"}]},
    "bad_dag_id": {"id": "9d", "tasks": [{"id": "a", "shell": "echo"}]},
    "missing_id": {"tasks": [{"id": "a", "shell": "echo"}]},
    "missing_tasks": {"id": "d"},
    "empty_tasks": {"id": "d", "tasks": []},
    "task_without_id": {"id": "d", "tasks": [{"shell": "echo"}]},
    "negative_retries": base(shell="echo", retries=-1),
    "too_many_retries": base(shell="echo", retries=spec.MAX_RETRIES + 1),
    "zero_timeout": base(shell="echo", timeout=0),
    "upstream_number": base(shell="echo", upstream=5),
    "args_mapping": base(python="m:f", args={"task": "b"}),
    "empty_shell": base(shell=""),
    "python_without_colon": base(python="mod.fn"),
}

# Editors should flag these even though the loader is lenient today (pydantic coerces
# "yes"/"3"; a one-key mapping with a non-string id is read as a literal).
SCHEMA_STRICTER = {
    "jitter_string": base(shell="echo", retry_jitter="yes"),
    "retries_string": base(shell="echo", retries="3"),
    "task_ref_not_a_string": base(python="m:f", args=[{"task": 5}]),
}


@pytest.mark.parametrize("name", VALID)
def test_valid_documents(name: str) -> None:
    doc = VALID[name]
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []
    assert loader_ok(doc)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_documents_rejected_by_schema_and_loader(name: str) -> None:
    doc = INVALID[name]
    assert not schema_ok(doc)
    assert not loader_ok(doc)


@pytest.mark.parametrize("name", SCHEMA_STRICTER)
def test_schema_stricter_than_loader(name: str) -> None:
    assert not schema_ok(SCHEMA_STRICTER[name])


def test_unknown_key_error_points_at_the_key() -> None:
    errs = list(VALIDATOR.iter_errors(base(shell="echo", retry=3)))
    assert len(errs) == 1
    assert list(errs[0].absolute_path) == ["tasks", 0]
    assert "'retry' was unexpected" in errs[0].message


def test_reference_shapes() -> None:
    def arg_ok(arg: Any) -> bool:
        return schema_ok(base(python="m:f", args=[arg]))

    assert arg_ok({"task": "a"})
    assert arg_ok({"param": "p"})
    assert arg_ok({"task": "a", "note": 1})  # two keys: a literal mapping
    assert not arg_ok({"task": "bad id"})
    assert not arg_ok({"param": "x.y"})
    assert arg_ok({"context": "logical_time"})
    assert not arg_ok({"context": "nothing"})  # the loader refuses it too
    assert not loader_ok(base(python="m:f", args=[{"context": "nothing"}]))
    assert {"required": ["context"]} in SCHEMA["$defs"]["literal"]["not"]["anyOf"]
