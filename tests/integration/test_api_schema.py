"""schemathesis against our own OpenAPI document, on both databases: bounded examples per
operation (valid and invalid requests, then valid ones on a real DAG, run and task), with
an operator's token; no answer is a 5xx, every answer (status code, media type, body,
headers) is one the document describes, invalid requests are refused, a request without
the token is refused.

The operations are driven one by one through ``APIOperation.as_strategy`` rather than
``schemathesis.pytest.from_fixture``: its lazy schema reads ``node._nodeid``, which
pytest 9 no longer has, and the document needs the conftest stack's database to exist.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from orchestrator.api.app import create_app
from orchestrator.client import Client
from tests.api_support import token

pytestmark = pytest.mark.integration
EXAMPLES = 25
EXCLUDED = [positive_data_acceptance]
"""Every check schemathesis has (no 5xx, documented status, media type, body and headers,
invalid data refused, a missing token refused, ...) but this one: it expects any body
the document allows to be accepted, and a run's params are checked against its DAG's own
params, which the one document of the submit route cannot spell out per DAG (GET
/api/v1/dags/{dag_id} gives each DAG's params_schema)."""


def _drive(operation: Any, mode: GenerationMode, bearer: dict[str, str],
           seen: Counter[tuple[str, int]], **fixed: Any) -> str | None:
    """Up to EXAMPLES cases of one operation; the failure, if schemathesis found one."""

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        # A negative case may drop the Authorization header the document requires; adding
        # the token back would make it valid and its 200 a false "accepted bad data"
        # (seen on GET /api/v1/events, whose optional query leaves nothing else to break).
        dropped = mode == GenerationMode.NEGATIVE and "Authorization" not in (
            case.headers or {})
        response = case.call_and_validate(headers={} if dropped else bearer,
                                          excluded_checks=EXCLUDED)
        seen[(operation.label, response.status_code)] += 1

    try:
        check()
    except Unsatisfiable:
        # a negative case of an operation with nothing to negate (no parameter)
        assert mode == GenerationMode.NEGATIVE, operation.label
    except Exception as exc:  # every operation is tried; all failures reported
        return f"{operation.label} ({mode.value}, {sorted(fixed)}): {exc}"
    return None


def test_every_answer_matches_the_document(client: Client) -> None:
    finished = client.submit("api_quick", {"n": 2})
    client.wait(finished, timeout=60)
    client.set_pool("api_schema_pool", 2)
    backfill = client.backfill("bf_yearly", dt.datetime(1801, 1, 1), dt.datetime(1802, 1, 1))
    known = {"dag_id": "api_quick", "run_id": finished, "task_id": "api_step",
             "name": "api_schema_pool", "backfill_id": backfill.backfill_id}
    bearer = {"Authorization": f"Bearer {token(client, 'operator')}"}
    app = create_app(client.settings, client=client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=bearer)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11, [op.label for op in operations]
    seen: Counter[tuple[str, int]] = Counter()
    failures = []
    for operation in operations:
        failures += [_drive(operation, mode, bearer, seen)
                     for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        names = {p.name for p in operation.path_parameters}
        if names:  # the same on ids that exist, so answers other than 404 are met too
            failures.append(_drive(operation, GenerationMode.POSITIVE, bearer, seen,
                                   path_parameters={n: known[n] for n in names}))
    # generated pool names could bound the default pool that every test here uses, and
    # the pause route pauses the DAG other tests submit
    client.set_pool("default", None)
    client.unpause("api_quick")
    assert not [f for f in failures if f], "\n\n".join(f for f in failures if f)
    logs = "GET /api/v1/runs/{run_id}/tasks/{task_id}/logs"
    for label in ("GET /api/v1/dags/{dag_id}", "GET /api/v1/runs/{run_id}", logs,
                  logs + "/stream"):
        assert seen[(label, 200)], (label, sorted(seen.items()))
    assert seen[("POST /api/v1/runs/{run_id}/cancel", 409)]
