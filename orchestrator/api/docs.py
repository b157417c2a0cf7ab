"""/openapi.json and the interactive docs (/docs), behind a viewer token like every route
but /healthz (a browser signed in to the run view sends its cookie).

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package, installed with the
orchestrator, and are served from here: the docs need no CDN, and nothing third-party
is committed. Without that package, /docs falls back to FastAPI's CDN links.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from orchestrator.api.auth import Viewer
from orchestrator.api.problems import HTTPProblem

router = APIRouter(include_in_schema=False)

ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _bundle() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui_bundle")
    if spec is None or not spec.submodule_search_locations:
        return None
    vendor = Path(next(iter(spec.submodule_search_locations))) / "vendor"
    found = sorted(vendor.glob("swagger-ui-*")) if vendor.is_dir() else []
    return found[-1] if found else None


_BUNDLE = _bundle()


@router.get("/openapi.json")
def openapi(request: Request, _who: Viewer) -> JSONResponse:
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


@router.get("/docs")
def docs(_who: Viewer) -> HTMLResponse:
    title, params = "orchestrator API", {"persistAuthorization": False}
    if _BUNDLE is None:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=title,
                                   swagger_ui_parameters=params)
    return get_swagger_ui_html(openapi_url="/openapi.json", title=title,
                               swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs/assets/swagger-ui.css",
                               swagger_favicon_url="/docs/assets/favicon-32x32.png",
                               swagger_ui_parameters=params)


@router.get("/docs/assets/{name}")
def docs_asset(name: str, _who: Viewer) -> FileResponse:
    if _BUNDLE is None or name not in ASSETS:
        raise HTTPProblem(404, f"no docs asset {name[:100]!r}")
    return FileResponse(_BUNDLE / name, media_type=_MEDIA[Path(name).suffix],
                        headers={"Cache-Control": "public, max-age=86400"})
