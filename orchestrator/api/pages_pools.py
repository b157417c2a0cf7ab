"""The pools page: each pool's slots and what its tasks hold and wait for."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.api import deps
from orchestrator.api import pages_common as common

router = APIRouter(include_in_schema=False)


@router.get("/pools")
def pools_page(request: Request) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    return common.render(request, "pools.html", pools=deps.client(request).pools())
