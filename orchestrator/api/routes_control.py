"""/api/v1 routes: slot pools, named events and the schedules of the DAG folder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from orchestrator.api import deps
from orchestrator.api import schemas_control as schemas
from orchestrator.api.auth import Operator, Viewer
from orchestrator.api.deps import ClientDep, DagBagDep
from orchestrator.api.problems import responses
from orchestrator.model import limits, records
from orchestrator.store import pools as pools_

router = APIRouter(dependencies=[Depends(deps.strict_query)])

PoolName = Annotated[str, Path(max_length=pools_.NAME_MAX, description="A pool's name.")]
EventName = Annotated[str | None, Query(max_length=limits.MAX_ID_LENGTH * 2)]


@router.get("/pools", tags=["pools"], response_model=schemas.PoolList, responses=responses())
def list_pools(_who: Viewer, client: ClientDep) -> schemas.PoolList:
    """Every pool with its slots (null: unbounded) and what its tasks hold and wait for;
    usage is summed from the task rows, never kept as a counter."""
    return schemas.PoolList(pools=client.pools())


@router.get("/pools/{name}", tags=["pools"], response_model=records.Pool,
            responses=responses(404))
def get_pool(name: PoolName, _who: Viewer, client: ClientDep) -> records.Pool:
    """One pool and its usage."""
    return client.store.pool(name)


@router.put("/pools/{name}", tags=["pools"], response_model=records.Pool,
            responses=responses(403, 409))
def set_pool(name: PoolName, body: schemas.PoolBody, _who: Operator,
             client: ClientDep) -> records.Pool:
    """Create a pool or change its slots. Waiters a bigger pool has room for are
    admitted now and sent by the coordinator's next pass."""
    return client.set_pool(name, body.slots, body.description)


@router.delete("/pools/{name}", tags=["pools"], status_code=204,
               responses=responses(403, 404, 409))
def delete_pool(name: PoolName, _who: Operator, client: ClientDep) -> Response:
    """Delete a pool no task holds or waits for (409 otherwise, and for the default
    pool)."""
    client.store.delete_pool(name)
    return Response(status_code=204)


@router.post("/events", tags=["events"], status_code=201, response_model=schemas.Emitted,
             responses=responses(403, 413, 503))
def emit_event(body: schemas.EventBody, _who: Operator,
               client: ClientDep) -> schemas.Emitted:
    """Emit a named event: each DAG scheduled on it and not paused gets a run, whose
    tasks read the payload; the others keep it pending. Never dropped."""
    done = client.emit(body.name, body.payload)
    return schemas.Emitted(event_id=done.event_id, runs=done.runs, pending=done.pending)


@router.get("/events", tags=["events"], response_model=schemas.EventList,
            responses=responses())
def list_events(_who: Viewer, client: ClientDep, name: EventName = None,
                kind: Annotated[str | None, Query(pattern="^(event|asset)$")] = None,
                pending: Annotated[bool, Query(
                    description="Only events some subscriber has not consumed.")] = False,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> schemas.EventList:
    """Events and asset updates newest first, each with the runs that consumed it (per
    subscriber DAG; a null run: still pending)."""
    return schemas.EventList(events=client.store.events(kind, name, pending, limit))


@router.get("/schedules", tags=["schedules"], response_model=schemas.ScheduleList,
            responses=responses())
def list_schedules(_who: Viewer, client: ClientDep, bag: DagBagDep) -> schemas.ScheduleList:
    """Each DAG of the folder that has a schedule: paused or not, its next and last
    fire (UTC) and how many ticks it skipped."""
    timed = sorted(d.id for d in bag.dags.values() if d.spec.schedule is not None)
    states = {s.dag_id: s for s in client.store.dag_states(timed)} if timed else {}
    return schemas.ScheduleList(schedules=[
        schemas.Schedule(**states[d].model_dump()) for d in timed if d in states])
