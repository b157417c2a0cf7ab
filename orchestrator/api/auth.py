"""Who is asking: a bearer token (or, for GET and HEAD only, the ``orch_token`` cookie the
sign-in page sets), looked up by its sha256 hash; viewers read, operators also act.

The cookie is refused on other methods, so a page on another site cannot make a
signed-in browser trigger, cancel or rerun (the pages' own POST forms carry the CSRF
token of :func:`csrf_token` as well). A token never appears in an answer or a log line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.api import deps
from orchestrator.api.problems import HTTPProblem
from orchestrator.model.records import Role

__all__ = ["COOKIE", "Principal", "Role", "authenticate", "check_csrf", "csrf_token",
           "form_principal",
           "require_operator", "require_viewer"]

COOKIE = "orch_token"
MAX_TOKEN_LENGTH = 200
"""Longer than any token we make: anything longer is refused without a lookup."""
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(auto_error=False, description="A token from `orchestrator tokens create`.")


@dataclasses.dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    token_id: str


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    if request.method in _SAFE_METHODS:
        return request.cookies.get(COOKIE)
    return None


def authenticate(request: Request) -> Principal | None:
    """The principal the request's token names, or None (no token, unknown, revoked).
    Looked up once per request."""
    if "principal" in request.scope.get("state", {}):
        cached: Principal | None = request.state.principal
        return cached
    token = _presented(request)
    found = None
    if token and len(token) <= MAX_TOKEN_LENGTH and token.isascii():
        record = deps.client(request).store.principal(token)
        if record is not None:
            found = Principal(name=record.name, role=record.role, token_id=record.id)
    request.state.principal = found
    return found


def require_viewer(request: Request, _credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)] = None) -> Principal:
    """Any valid token (the dependency on ``bearer`` documents the scheme in OpenAPI)."""
    found = authenticate(request)
    if found is None:
        raise HTTPProblem(401, "a valid token is required: Authorization: Bearer TOKEN "
                          "(make one with `orchestrator tokens create`)", headers=_CHALLENGE)
    return found


def require_operator(principal: Annotated[Principal, Depends(require_viewer)]) -> Principal:
    if principal.role != Role.OPERATOR:
        raise HTTPProblem(403, f"token {principal.name!r} is a {principal.role.value}: only "
                          "operators may trigger, cancel or rerun")
    return principal


Viewer = Annotated[Principal, Depends(require_viewer)]
Operator = Annotated[Principal, Depends(require_operator)]


def csrf_token(token: str) -> str:
    """The CSRF value the pages put in their POST forms: derived from the session's token,
    so it needs no storage, and a page on another site cannot know it."""
    return hashlib.sha256(("csrf:" + token).encode("utf-8", "surrogatepass")).hexdigest()


def check_csrf(request: Request, form_value: str | None) -> None:
    """A cookie-authenticated form post must carry the CSRF value of that cookie's token."""
    token = request.cookies.get(COOKIE)
    if not token or not form_value or not hmac.compare_digest(csrf_token(token),
                                                              form_value):
        raise HTTPProblem(403, "the form's CSRF token is missing or wrong: reload the page")


def form_principal(request: Request, form_value: str | None, *,
                   operator: bool = True) -> Principal:
    """For the pages' POST forms: the cookie's principal, once the form's CSRF value
    matches that cookie (the one way the cookie counts on a POST)."""
    check_csrf(request, form_value)
    token = request.cookies.get(COOKIE, "")
    record = (deps.client(request).store.principal(token)
              if len(token) <= MAX_TOKEN_LENGTH and token.isascii() else None)
    if record is None:
        raise HTTPProblem(401, "sign in again: the session's token is not valid",
                          headers=_CHALLENGE)
    found = Principal(name=record.name, role=record.role, token_id=record.id)
    if operator and found.role != Role.OPERATOR:
        raise HTTPProblem(403, f"token {found.name!r} is a {found.role.value}: only "
                          "operators may trigger, cancel or rerun")
    return found
