"""The OpenAPI schema of a running node: what it asks of callers under its own settings.

FastAPI builds one schema from the routes, the same whatever the settings. This module
restates the parts the settings decide: the bearer credential, declared on an operation
(with its 401) only where the node asks for it (no api token: nowhere; a token: writes and
admin routes; with protect_reads, reads too); the 403 of admin routes on a node without
a token; the limits taken from the node's Config (key length, value size, body size); and
the content type of /metrics, which the Prometheus library, loaded on demand, decides.

`install(app, settings)` makes `app.openapi()` (and so /openapi.json and /docs) answer
with that schema. The standalone node installs it when it is built, and
`shared_state_lifespan` when a node starts inside any app that includes `node.router`:
an embedded app's schema is exact from its first request on (before startup, it is the
schema of a node with the default settings and no api token).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request, Response, routing
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from node.server.settings import Settings
from node.web.api import delete_value, key_schema, set_value, value_schema
from node.web.http_basics import Access, ErrorOut, Guard, LimitedRoute, needs_token
from node.web.metrics_api import declare_content_type, metrics

Schema = dict[str, Any]
SCHEME = "apiToken"
_KEYED = (set_value, delete_value)  # the routes whose body holds a key (and a value)


class NodeOpenAPI:
    """`app.openapi`, replaced: the app's own schema, restated for the node's settings
    (given, or those of the node at `app.state.shared_state`), built once."""

    def __init__(self, app: FastAPI, settings: Settings | None, plain: Callable[[], Schema]) -> None:
        self.app, self.settings, self.plain = app, settings, plain

    def __call__(self) -> Schema:
        if self.app.openapi_schema is None:
            settings = self.settings or self.app.state.shared_state.settings
            self.app.openapi_schema = restate(copy.deepcopy(self.plain()), self.app, settings)
        return self.app.openapi_schema


def install(app: FastAPI, settings: Settings | None = None) -> None:
    """Make `app.openapi()` state what a node with `settings` (default: the app's node,
    when the schema is first asked for) asks of callers. Safe to call again (a restarted
    lifespan): it replaces the earlier one and forgets its schema."""
    current = app.openapi
    plain = current.plain if isinstance(current, NodeOpenAPI) else current
    app.openapi_schema = None
    app.openapi = NodeOpenAPI(app, settings, plain)  # type: ignore[method-assign]


def routes(app: Any) -> Iterable[Any]:
    """The app's routes, each with what the routers it came through add (FastAPI from
    0.16x includes routers lazily, and iter_route_contexts resolves them)."""
    resolve: Callable[[list[Any]], Iterable[Any]] = getattr(routing, "iter_route_contexts", iter)
    return resolve(app.routes)


def access_of(route: Any) -> Access | None:
    """The guard's access: in the route's dependencies, with its routers' ones."""
    for dependency in route.dependencies:
        if isinstance(dependency.dependency, Guard):
            return dependency.dependency.access
    return None


def restate(schema: Schema, app: FastAPI, settings: Settings) -> Schema:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("ErrorOut", ErrorOut.model_json_schema())
    guarded = False
    for route in routes(app):
        original = getattr(route, "original_route", route)
        if not (isinstance(original, APIRoute) and route.include_in_schema):
            continue
        access = access_of(route)
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if access is not None:
                guarded |= _declare_access(operation, access, settings)
            if isinstance(original, LimitedRoute) and "requestBody" in operation:
                _declare_body_limit(operation, settings.config.max_body_bytes)
            if route.endpoint in _KEYED:
                _declare_key_limits(schema, operation, settings)
            if route.endpoint is metrics:
                declare_content_type(operation)
    schemes = components.setdefault("securitySchemes", {})
    if guarded:
        schemes[SCHEME] = {"type": "http", "scheme": "bearer",
                           "description": "the node's api token (Authorization: Bearer <token>)"}
    else:
        schemes.pop(SCHEME, None)
    if not schemes:
        del components["securitySchemes"]
    return schema


def _error(description: str, **headers: str) -> Schema:
    body = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
    answer: Schema = {"description": description, "content": {"application/json": body}}
    if headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in headers.items()}
    return answer


def _declare_access(operation: Schema, access: Access, settings: Settings) -> bool:
    """The credential and the refusals `access` means on this node; whether it needs the token."""
    responses = operation.setdefault("responses", {})
    needed = needs_token(settings, access)
    if needed:
        operation["security"] = [{SCHEME: []}]
        responses["401"] = _error("the api token is missing or wrong",
                                  **{"WWW-Authenticate": "Bearer"})
    else:
        operation.pop("security", None)
    if access is Access.ADMIN and not settings.api_token:
        responses["403"] = _error("admin routes are off: the node has no api token")
    return needed


def _declare_body_limit(operation: Schema, limit: int) -> None:
    words = f"at most {limit} bytes (with or without a Content-Length), else 413"
    operation["requestBody"]["description"] = f"A JSON body of {words}."
    operation.setdefault("responses", {})["413"] = _error(f"the body is over {limit} bytes")


def _declare_key_limits(schema: Schema, operation: Schema, settings: Settings) -> None:
    ref = operation["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
    body = schema["components"]["schemas"].get(ref.rpartition("/")[2], {})
    fields = body.get("properties", {})
    if "key" in fields:
        fields["key"] = {**fields["key"], **key_schema(settings.config)}
    if "value" in fields:
        fields["value"] = {**fields["value"], **value_schema(settings.config)}


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """A 405 whose Allow header names every method of the path (Starlette's names those of
    the first route that matches, and /admin/keys has one route per method)."""
    allowed: set[str] = set()
    for route in routes(request.app):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            allowed |= getattr(route, "methods", None) or set()
    return JSONResponse({"detail": "Method Not Allowed"}, 405, headers={"Allow": ", ".join(sorted(allowed))})
