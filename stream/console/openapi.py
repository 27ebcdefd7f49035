"""The console's OpenAPI schema tells every answer an integrator can get, errors too.

FastAPI documents a route's success and its 422; the refusals every route shares (no session,
a role or CSRF refusal, an id outside the user's cohorts, a body that is not JSON) come from
dependencies and helpers it cannot see. ``document_errors`` adds them from what a route is:
an API route needs a caller; a state change needs the CSRF token; a path with an id can be
404. ``invalid`` raises a 422 shaped like FastAPI's own, so one schema holds for both.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi

ERROR = {"type": "object", "required": ["detail"],
         "properties": {"detail": {"type": "string"}}}

# no caller needed: signing in and its CSRF token
OPEN = {("get", "/api/csrf"), ("post", "/api/session")}
BODY_METHODS = {"post", "put", "patch"}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def invalid(loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    """A 422 like FastAPI's validation errors (``detail`` a list of ``loc``/``msg``/``type``)."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def _errors_of(method: str, path: str, op: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if (method, path) not in OPEN:
        out["401"] = _error("not signed in, or an unknown or revoked API token")
        out["403"] = _error("the role may not do this, or a cookie request without its "
                            "X-CSRF-Token")
    if (method, path) == ("post", "/api/session"):
        out["401"] = _error("wrong user name or password")
        out["403"] = _error("missing or wrong X-CSRF-Token (GET /api/csrf first)")
        out["429"] = _error("too many failed logins (Retry-After)")
    if "{" in path:
        out["404"] = _error("no such patient or open alarm, or one outside your cohorts")
    if method in BODY_METHODS and "requestBody" in op:
        out["400"] = _error("the body is not JSON")
    return out


def document_errors(app: FastAPI, extra: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
    """Make ``app.openapi()`` list each route's error answers. ``extra``: more per
    (method, path), e.g. ``{("get", "/api/events"): {"503": "no live feed"}}``."""
    extra = extra or {}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        for path, item in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                found = _errors_of(method, path, op)
                found.update({code: _error(d) for code, d in extra.get((method, path), {}).items()})
                for code, response in found.items():
                    responses.setdefault(code, response)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
