"""What every route of a node shares: the node behind a request (`state_of`, the
`StateDep` dependency), bodies read within the size limit (`LimitedRoute`), who may call
what (`Access`, `authorize`, a `Guard` per route), the error answer (`ErrorOut`) and JSON
answers encoded once. The routes: node.web.api (reading and writing keys), node.web.peer_api
(gossip), node.web.admin_api (keys), node.web.recipes_api and node.web.metrics_api."""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from gossip.jsontext import dumps
from node.server.settings import Settings
from node.state import SharedState


class LimitedRequest(Request):
    """A request whose body may not exceed max_bytes, declared or streamed (chunked)."""

    max_bytes: int = 0

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            self._body = await read_limited(self, self.max_bytes)
        return self._body


async def read_limited(request: Request, limit: int) -> bytes:
    """The request's body; 413 if it exceeds `limit` bytes, declared or streamed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body exceeds the limit of {limit} bytes")


class LimitedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            limited_request = LimitedRequest(request.scope, request.receive)
            limited_request.max_bytes = state_of(request).config.max_body_bytes
            return await handler(limited_request)

        return limited


def state_of(request: Request) -> SharedState:
    state = getattr(request.app.state, "shared_state", None)
    if not isinstance(state, SharedState):
        raise RuntimeError("shared state is not running: use node.web.app.shared_state_lifespan")
    return state


async def shared_state(request: Request) -> SharedState:
    """FastAPI dependency: this node's SharedState (async: no thread hop per request)."""
    return state_of(request)


StateDep = Annotated[SharedState, Depends(shared_state)]


# -- Who may call what: one rule (needs_token), one check (authorize), and a guard per
# route that node.web.openapi reads to declare the credential exactly where it is needed.


class Access(enum.Enum):
    READ = "read"  # the api token only with protect_reads
    WRITE = "write"  # the api token, if one is set
    ADMIN = "admin"  # only on a node with an api token, and with it


def needs_token(settings: Settings, access: Access) -> bool:
    return bool(settings.api_token) and (access is not Access.READ or settings.protect_reads)


def authorize(request: Request, access: Access) -> None:
    """Refuse a request without the credential `access` needs on this node (401), or
    an admin request to a node without an api token (403)."""
    settings = state_of(request).settings
    if access is Access.ADMIN and not settings.api_token:
        raise HTTPException(403, "admin routes are off: start the node with an api token")
    if needs_token(settings, access):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given if scheme.lower() == "bearer" else ""
        if not hmac.compare_digest(given.encode(), settings.api_token.encode()):
            raise HTTPException(
                401, "a valid bearer token is required" if given else "missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )


class Guard:
    """A route's access check as a dependency: one plain call, nothing else to resolve."""

    def __init__(self, access: Access) -> None:
        self.access = access

    async def __call__(self, request: Request) -> None:
        authorize(request, self.access)


reader, writer, admin = Guard(Access.READ), Guard(Access.WRITE), Guard(Access.ADMIN)


class ErrorOut(BaseModel):
    """Every error answer: what was wrong (request validation gives a list of problems)."""

    detail: str | list[dict[str, Any]]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents in the OpenAPI spec (422 replaces FastAPI's
    default, whose `detail` is only ever a list)."""
    return {code: {"model": ErrorOut} for code in codes}


def json_response(content: object) -> Response:
    """`content` as JSON, encoded once (orjson), with no second validation."""
    return Response(dumps(content), media_type="application/json")
