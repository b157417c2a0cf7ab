"""/api/v1 routes: backfills of a DAG's logical times, and pausing a DAG."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from orchestrator.api import deps
from orchestrator.api import schemas_control as schemas
from orchestrator.api.auth import Operator, Viewer
from orchestrator.api.deps import ClientDep, DagBagDep
from orchestrator.api.problems import responses
from orchestrator.model import limits, records

router = APIRouter(dependencies=[Depends(deps.strict_query)])

DagId = Annotated[str, Path(max_length=limits.MAX_ID_LENGTH, description="A DAG id.")]
BackfillId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="A backfill's id.")]


@router.post("/dags/{dag_id}/backfills", tags=["backfills"], status_code=201,
             response_model=schemas.BackfillAccepted,
             responses={**responses(403, 404, 409, 503),
                        200: {"model": schemas.BackfillAccepted,
                              "description": "A dry run: the count, nothing written."}})
def start_backfill(dag_id: DagId, body: schemas.BackfillBody, _who: Operator,
                   client: ClientDep, bag: DagBagDep) -> schemas.BackfillAccepted:
    """Run the DAG for each logical time of its schedule in [start, end), oldest first,
    ``max_active`` at a time: the first runs start now, each next one as one ends. 422
    for a DAG without a time schedule or more logical times than ORCH_MAX_BACKFILL_RUNS."""
    bag.get(dag_id)
    done = client.backfill(dag_id, body.start, body.end, reprocess=body.reprocess,
                           max_active=body.max_active, dry_run=body.dry_run)
    w = done.window
    return schemas.BackfillAccepted(backfill_id=done.backfill_id, total=w.total,
                                    first=w.first, last=w.last)


@router.get("/backfills", tags=["backfills"], response_model=schemas.BackfillList,
            responses=responses())
def list_backfills(_who: Viewer, client: ClientDep,
                   dag_id: Annotated[str | None, Query(max_length=limits.MAX_ID_LENGTH)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.BackfillList:
    """Backfills newest first, each with its progress and its runs by state."""
    return schemas.BackfillList(backfills=client.store.backfills(dag_id, limit))


@router.get("/backfills/{backfill_id}", tags=["backfills"], response_model=records.Backfill,
            responses=responses(404))
def get_backfill(backfill_id: BackfillId, _who: Viewer, client: ClientDep) -> records.Backfill:
    return client.store.backfill(backfill_id)


@router.post("/backfills/{backfill_id}/cancel", tags=["backfills"],
             response_model=schemas.BackfillCancelled, responses=responses(403, 404, 409, 503))
def cancel_backfill(backfill_id: BackfillId, _who: Operator,
                    client: ClientDep) -> schemas.BackfillCancelled:
    """No more runs; its runs going are cancelled. 409 if it has ended."""
    return schemas.BackfillCancelled(backfill_id=backfill_id,
                                     cancelled_runs=client.cancel_backfill(backfill_id))


def _pause(dag_id: str, paused: bool, client: ClientDep, bag: DagBagDep) -> schemas.Paused:
    bag.get(dag_id)  # a DAG of the folder: pausing a typo must not create a row
    if paused:
        client.pause(dag_id)
        return schemas.Paused(dag_id=dag_id, paused=True)
    return schemas.Paused(dag_id=dag_id, paused=False, runs=client.unpause(dag_id))


@router.post("/dags/{dag_id}/pause", tags=["dags"], response_model=schemas.Paused,
             responses=responses(403, 404))
def pause_dag(dag_id: DagId, _who: Operator, client: ClientDep,
              bag: DagBagDep) -> schemas.Paused:
    """Pause a DAG: no scheduled, triggered or backfill runs until it is unpaused (events
    for it stay pending)."""
    return _pause(dag_id, True, client, bag)


@router.post("/dags/{dag_id}/unpause", tags=["dags"], response_model=schemas.Paused,
             responses=responses(403, 404))
def unpause_dag(dag_id: DagId, _who: Operator, client: ClientDep,
                bag: DagBagDep) -> schemas.Paused:
    """Unpause a DAG: its schedule fires again, and its pending events start their runs."""
    return _pause(dag_id, False, client, bag)
