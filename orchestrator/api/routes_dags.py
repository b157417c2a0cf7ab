"""/api/v1 routes: the DAGs of the server's folder, and submitting a run of one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response

from orchestrator.api import deps, schemas
from orchestrator.api.auth import Operator, Viewer
from orchestrator.api.deps import ClientDep, DagBagDep
from orchestrator.api.problems import responses
from orchestrator.model import limits

router = APIRouter(tags=["dags"], dependencies=[Depends(deps.strict_query)])

DagId = Annotated[str, Path(max_length=limits.MAX_ID_LENGTH, description="A DAG id.")]


@router.get("/dags", response_model=schemas.DagList, responses=responses())
def list_dags(_who: Viewer, bag: DagBagDep) -> schemas.DagList:
    """Every DAG of the server's DAG folder, and the files that failed to load."""
    return schemas.DagList(
        dags=[schemas.dag_summary(d) for d in sorted(bag.dags.values(), key=lambda d: d.id)],
        errors=[schemas.DagLoadError(file=f, error=str(e)) for f, e in sorted(bag.errors.items())])


@router.get("/dags/{dag_id}", response_model=schemas.DagDetail, responses=responses(404))
def get_dag(dag_id: DagId, _who: Viewer, bag: DagBagDep) -> schemas.DagDetail:
    """A DAG's graph (nodes and edges), its params' JSON Schema, schedule and version."""
    return schemas.dag_detail(bag.get(dag_id))


@router.post("/dags/{dag_id}/runs", status_code=201, response_model=schemas.Submitted,
             responses={**responses(403, 404, 409, 413, 503),
                        200: {"model": schemas.Submitted,
                              "description": "The Idempotency-Key named an existing run of "
                              "this DAG with the same params: that run, nothing new."}})
def submit_run(dag_id: DagId, _who: Operator, client: ClientDep, bag: DagBagDep,
               response: Response, body: schemas.SubmitBody | None = None,
               idempotency_key: Annotated[str | None, Header(
                   alias="Idempotency-Key", max_length=limits.MAX_IDEMPOTENCY_KEY_LENGTH,
                   description="Submitting again with the same key returns the same run."),
               ] = None) -> schemas.Submitted:
    """Start a run. Invalid params are a 422 listing every problem, and then nothing is
    written and nothing is sent."""
    bag.get(dag_id)  # the folder rescanned (DagBagDep), an unknown DAG a 404
    params = body.params if body is not None else {}
    submitted = client.submit_run(dag_id, params, idempotency_key=idempotency_key,
                                  logical_time=body.logical_time if body else None)
    if not submitted.created:
        response.status_code = 200
    return schemas.Submitted(run_id=submitted.run_id, created=submitted.created)
