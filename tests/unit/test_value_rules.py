"""The value rules without services: the params walk, the result check, declared
defaults, the byte-bounded cache, and limits that agree with the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.model import limits, params, spec, values
from orchestrator.store.attempts import fit
from orchestrator.store.cache import ByteLRU
from orchestrator.store.tables import attempts, dag_versions, runs, task_instances


def test_the_walk_never_recurses() -> None:
    value: Any = 1
    for _ in range(200_000):
        value = {"k": value}
    (problem,) = params.problems_in(value, "p")
    assert problem.endswith(f"is nested more than {limits.MAX_PARAMS_DEPTH} deep")


@pytest.mark.parametrize(("value", "problem"), [
    (float("nan"), "is not JSON-serialisable: nan"),
    ("a\x00", "contains a NUL character"),
    ({"\x00": 1}, "has a key that contains a NUL character"),
    ({(1, 2): 1}, "has a key that is not a string: (1, 2)"),
    (2**63, "is an integer outside the 64-bit range"),
    ("\udfff", "contains a lone surrogate"),
    (b"bytes", "is not JSON-serialisable: b'bytes'"),
])
def test_each_kind_of_problem(value: Any, problem: str) -> None:
    (found,) = params.problems_in([value], "p")
    assert found.startswith("p[0] ") and problem in found


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(limits.MIN_INT, limits.MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_storable_values_have_no_problem(value: Any) -> None:
    if "\\u0000" in json.dumps(value):  # drawn text has no surrogates, but may hold NUL
        return
    assert params.problems_in(value, "p") == []
    values.check_result(value, 10**9)


def test_a_default_is_checked_like_a_submitted_value() -> None:
    with pytest.raises(errors.DagError, match=r"default of param 'x' is not "
                                              r"JSON-serialisable: nan"):
        yaml_dags.load_text("id: d\nparams:\n  x: {default: .nan}\n"
                            "tasks:\n  - {id: a, shell: 'true'}\n")
    with pytest.raises(errors.DagError, match=r"default of param 'n' must be integer"):
        spec.build({"id": "d", "params": {"n": {"type": "integer", "default": "3",
                                                "required": False}},
                    "tasks": [{"id": "a", "kind": "shell", "command": "true"}]})
    with pytest.raises(errors.DagError, match=r"default of param 's'\['k'\] contains a NUL"):
        spec.build({"id": "d", "params": {"s": {"default": {"k": "\x00"}, "required": False}},
                    "tasks": [{"id": "a", "kind": "shell", "command": "true"}]})


def test_queue_names_are_checked() -> None:
    for queue in ("a b", "a,b", "q\n", "", "x" * 201):
        with pytest.raises(errors.DagError, match="invalid queue name"):
            spec.build({"id": "d", "tasks": [{"id": "a", "kind": "shell", "command": "true",
                                              "queue": queue}]})
    spec.build({"id": "d", "tasks": [{"id": "a", "kind": "shell", "command": "true",
                                      "queue": "gpu.high:1"}]})


@pytest.mark.parametrize(("result", "why"), [
    ({"a": "x\x00"}, "NUL character"), (["\\\x00"], "NUL character"),
    ("\ud800", "lone surrogate"), (float("inf"), "not JSON"), ({1, 2}, "not JSON"),
    ("x" * 99, r"101 bytes as JSON, more than ORCH_MAX_RESULT_BYTES \(100\)"),
    ("é" * 50, "102 bytes as JSON"),
])
def test_results_that_cannot_be_stored(result: Any, why: str) -> None:
    with pytest.raises(errors.InvalidResult, match=why):
        values.check_result(result, 100)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    values.check_result(["\\u0000", "\\\\u0000"], 100)
    values.check_result("x" * 98, 100)


def test_the_cache_stays_within_its_bytes() -> None:
    cache: ByteLRU[str] = ByteLRU(max_entries=1000, max_bytes=100)
    for i in range(50):
        cache.put(f"r{i}", "v", 30)
        assert cache.total <= 100
    assert len(cache) == 3 and cache.total == 90
    assert cache.get("r49") == "v" and cache.get("r0") is None
    cache.put("huge", "v", 101)  # bigger than the whole budget: not kept
    assert cache.get("huge") is None and cache.total == 90
    cache.get("r47")  # recently used: kept over r48
    cache.put("new", "v", 30)
    assert cache.get("r47") == "v" and cache.get("r48") is None


def test_the_cache_bounds_entries_too() -> None:
    cache: ByteLRU[int] = ByteLRU(max_entries=2, max_bytes=10**9)
    for i in range(5):
        cache.put(str(i), i, 1)
    assert len(cache) == 2 and cache.total == 2


def test_the_schema_is_wide_enough_for_every_limit() -> None:
    longest = spec.map_instance_id("m" * limits.MAX_ID_LENGTH, limits.MAP_ITEMS_CEILING - 1)
    assert len(longest) == limits.MAX_INSTANCE_ID_LENGTH
    for table in (task_instances, attempts):
        assert table.c.task_id.type.length >= limits.MAX_INSTANCE_ID_LENGTH  # type: ignore
    for table in (runs, dag_versions):
        assert table.c.dag_id.type.length >= limits.MAX_ID_LENGTH  # type: ignore[attr-defined]
    assert task_instances.c.map_parent.type.length >= limits.MAX_ID_LENGTH  # type: ignore
    assert runs.c.id.type.length == limits.RUN_ID_LENGTH  # type: ignore[attr-defined]
    assert runs.c.idempotency_key.type.length == limits.MAX_IDEMPOTENCY_KEY_LENGTH  # type: ignore
    assert task_instances.c.worker.type.length == limits.WORKER_COLUMN  # type: ignore
    assert attempts.c.error_type.type.length == limits.ERROR_TYPE_COLUMN  # type: ignore
    assert limits.MAP_ITEMS_CEILING - 1 < 2**31  # map_index is a 32-bit integer


def test_text_the_orchestrator_writes_fits() -> None:
    assert fit("a\x00b") == "a\\x00b"
    assert fit("w" * 300, limits.WORKER_COLUMN) == "w" * limits.WORKER_COLUMN
