"""The HTTP face of a node: a router any FastAPI app can include.

The routes find the node's SharedState at `request.app.state.shared_state`, which the
lifespan helper in node.app puts there.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gossip.auth import AuthError, KeyRing, KeyRingError, ReplayError, parse_key
from gossip.errors import CallerError, IncompatibleMessage, PeerError
from gossip.jsontext import dumps
from gossip.store import Entry
from node.state import ReplicationTimeout, SharedState


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
        raise RuntimeError("shared state is not running: use node.app.shared_state_lifespan")
    return state


async def shared_state(request: Request) -> SharedState:
    """FastAPI dependency: this node's SharedState (async: no thread hop per request)."""
    return state_of(request)


StateDep = Annotated[SharedState, Depends(shared_state)]


class SetBody(BaseModel):
    key: str = Field(description="the key, 1 to max_key_bytes UTF-8 bytes")
    value: Any = Field(description="any JSON value, null included")
    ttl: float | None = Field(None, gt=0, description="seconds until the entry expires")
    replicas: int = Field(0, ge=0, le=64, description="answer once this many peers hold the write")


class DeleteBody(BaseModel):
    key: str


class EntryOut(BaseModel):
    key: str
    value: Any
    timestamp: tuple[int, int] = Field(description="hybrid logical clock: [wall_ms, counter]")
    node: str = Field(description="id of the node that wrote it")
    deleted: bool = False
    expires_at: int | None = Field(None, description="wall ms when it expires, if ever")

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(**entry_json(e))


def entry_json(e: Entry) -> dict[str, Any]:
    """An entry as the API shows it (the shape of EntryOut)."""
    return {"key": e.key, "value": e.value, "timestamp": [e.ts.wall, e.ts.counter], "node": e.node,
            "deleted": e.deleted, "expires_at": e.expires_at}  # fmt: skip


class AllValues(BaseModel):
    node: str
    values: dict[str, Any]


bearer = HTTPBearer(auto_error=False, description="the node's api_token, if one is set")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _check_token(state: SharedState, credentials: HTTPAuthorizationCredentials | None) -> None:
    _require(state.settings.api_token, credentials.credentials if credentials is not None else "")


def _require(token: str, given: str) -> None:
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401, "a valid bearer token is required" if given else "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip


async def writer(state: StateDep, credentials: Credentials) -> None:
    """Dependency: writes need the api token, when one is set."""
    _check_token(state, credentials)


async def reader(state: StateDep, credentials: Credentials) -> None:
    """Dependency: reads need the api token only with protect_reads."""
    if state.settings.protect_reads:
        _check_token(state, credentials)


async def admin(state: StateDep, credentials: Credentials) -> None:
    """Dependency: admin routes exist only on a node with an api token."""
    if not state.settings.api_token:
        raise HTTPException(403, "admin routes are off: start the node with an api token")
    _check_token(state, credentials)


class ErrorOut(BaseModel):
    """Every error answer: what was wrong (request validation gives a list of problems)."""

    detail: str | list[dict[str, Any]]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents in the OpenAPI spec (422 replaces FastAPI's
    default, whose `detail` is only ever a list)."""
    return {code: {"model": ErrorOut} for code in codes}


# Routes take their token check as a dependency, but for the two hot ones (see below).
read_router = APIRouter(tags=["shared state"], responses=_errors(401, 422))  # (GETs: no body)
write_router = APIRouter(route_class=LimitedRoute, tags=["shared state"],
                         responses=_errors(400, 401, 413, 422))  # fmt: skip
_reads, _writes = [Depends(reader)], [Depends(writer)]
_bearer_declared: dict[str, Any] = {"security": [{"HTTPBearer": []}]}  # what the dependency declares
admin_router = APIRouter(route_class=LimitedRoute, tags=["admin"], dependencies=[Depends(admin)],
                         responses=_errors(400, 401, 403, 409, 413, 422))  # fmt: skip
gossip_router = APIRouter(tags=["gossip"])


def _caller_error(exc: CallerError) -> HTTPException:
    return HTTPException(422, str(exc))


def _json(content: object) -> Response:
    return Response(dumps(content), media_type="application/json")


def _bearer(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given if scheme.lower() == "bearer" else ""


# The two hot routes resolve at most one plain dependency (a chain of them costs more than
# the work itself), and encode the answer with orjson instead of validating it again.


async def write_token(request: Request) -> None:
    """Dependency: the api token for a write, if one is set (checked before the body)."""
    _require(state_of(request).settings.api_token, _bearer(request))


@write_router.post("/set", response_model=EntryOut, responses=_errors(504),
                   dependencies=[Depends(write_token)], openapi_extra=_bearer_declared)  # fmt: skip
async def set_value(body: SetBody, request: Request) -> Response:
    """Store a value under a key; it spreads to every node. With `replicas`, the answer
    waits until that many peers hold it (504 saying how many did, if they do not)."""
    state = state_of(request)
    try:
        if body.replicas:
            entry = await state.aset(body.key, body.value, body.ttl, body.replicas)
        else:
            entry = state.set(body.key, body.value, body.ttl)
    except CallerError as exc:
        raise _caller_error(exc) from exc
    except ReplicationTimeout as exc:
        raise HTTPException(504, str(exc)) from exc
    return _json(entry_json(entry))


@read_router.get("/get", response_model=EntryOut | AllValues, responses=_errors(404),
                 openapi_extra=_bearer_declared)  # fmt: skip
async def get_value(request: Request, key: Annotated[str | None, Query()] = None) -> Response:
    """One key's entry, or with no key every live key and its value."""
    state = state_of(request)
    if state.settings.protect_reads:
        _require(state.settings.api_token, _bearer(request))
    if key is None:
        return _json({"node": state.id, "values": state.snapshot()})
    entry = state.entry(key)
    if entry is None:
        raise HTTPException(404, f"key {key!r} not found (absent, deleted or expired)")
    return _json(entry_json(entry))


@write_router.post("/delete", response_model=EntryOut, dependencies=_writes)
async def delete_value(body: DeleteBody, state: StateDep) -> EntryOut:
    """Delete a key on every node (a tombstone that wins over older writes)."""
    try:
        return EntryOut.of(state.delete(body.key))
    except CallerError as exc:
        raise _caller_error(exc) from exc


@read_router.get("/members", dependencies=_reads)
async def members(state: StateDep) -> dict[str, Any]:
    """This node's view of the cluster: each member's status (alive, suspect, dead or
    left), the failure detector's phi, and when its heartbeat last moved."""
    return {"members": state.members()}


@read_router.get("/health", dependencies=_reads)
async def health(state: StateDep) -> dict[str, Any]:
    return {"status": "ok", "node": state.id}


@read_router.get("/digest", dependencies=_reads)
def digest(state: StateDep) -> dict[str, Any]:
    """A hash of the live state: equal on two nodes iff their live states are equal."""
    value, keys = state.state_hash()
    return {"digest": value, "keys": keys}


@read_router.get("/stats", dependencies=_reads)
async def stats(state: StateDep) -> dict[str, Any]:
    """Counters of gossip traffic, for monitoring and benchmarks."""
    return state.stats()


async def gossip(request: Request) -> Response:
    """Peer exchange (for peers only, from the `allow` networks): a coded message in, a
    coded reply out. A plain route, with no dependency to resolve: it is the hot path."""
    state = state_of(request)
    host = request.client.host if request.client else ""
    if not state.allows(host):
        raise HTTPException(403, f"gossip from {host or 'an unknown address'} is not allowed")
    body = await read_limited(request, state.config.max_body_bytes)
    try:
        reply = state.receive(body, request.headers)
    except ReplayError as exc:
        raise HTTPException(403, f"refused gossip: {exc}") from exc
    except AuthError as exc:
        raise HTTPException(401, f"unauthenticated gossip: {exc}") from exc
    except IncompatibleMessage as exc:
        raise HTTPException(409, f"incompatible gossip: {exc}") from exc
    except PeerError as exc:
        raise HTTPException(400, f"rejected gossip: {exc}") from exc
    if reply is None:
        return Response(status_code=204)
    return Response(reply, media_type="application/json", headers=state.sign(reply))


gossip_router.add_route("/gossip", gossip, methods=["POST"], include_in_schema=False)


class KeyBody(BaseModel):
    key: str = Field(description="a cluster key: 64 hex digits")


def _ring(state: SharedState) -> KeyRing:
    if state.keyring is None:
        raise HTTPException(409, "gossip signing is off on this node (no gossip key)")
    return state.keyring


@admin_router.get("/admin/keys")
async def list_keys(state: StateDep) -> dict[str, object]:
    """Ids of the installed keys and of the primary one (never the keys themselves)."""
    return _ring(state).describe()


@admin_router.post("/admin/keys")
async def install_key(body: KeyBody, state: StateDep) -> dict[str, object]:
    """Install a key that verifies; step 1 of a rotation, safe to repeat."""
    try:
        key = parse_key(body.key)
    except KeyRingError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _change_ring(state, lambda ring: ring.install(key))


@admin_router.post("/admin/keys/{kid}/primary")
async def use_key(kid: str, state: StateDep) -> dict[str, object]:
    """Sign with an installed key from now on; step 2, safe to repeat."""
    return _change_ring(state, lambda ring: ring.use(kid))


@admin_router.delete("/admin/keys/{kid}")
async def remove_key(kid: str, state: StateDep) -> dict[str, object]:
    """Stop accepting a key; step 3, safe to repeat."""
    return _change_ring(state, lambda ring: ring.remove(kid))


def _change_ring(state: SharedState, change: Callable[[KeyRing], object]) -> dict[str, object]:
    ring = _ring(state)
    try:
        with state.keyring_lock():
            change(ring)
    except KeyRingError as exc:
        raise HTTPException(409, str(exc)) from exc
    return ring.describe()


router = APIRouter()
router.include_router(read_router)
router.include_router(write_router)
