"""The HTTP face of a node: a router any FastAPI app can include.

The routes find the node's SharedState at `request.app.state.shared_state`, which the
lifespan helper in node.app puts there.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, Field

from gossip.auth import AuthError, KeyRing, KeyRingError, ReplayError, parse_key
from gossip.config import Config
from gossip.errors import CallerError, IncompatibleMessage, PeerError, WritesRefused
from gossip.jsontext import dumps
from gossip.namespaces import RESERVED
from gossip.store import Entry
from node.health import answer as health_answer
from node.settings import Settings
from node.state import ReplicationTimeout, SharedState, TooFewPeers
from node.transport import REFUSAL_HEADER, TIME_HEADER, wall_ms


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


# -- The bodies, and the limits on them: node.openapi restates the schema parts for each
# node's own Config; the node checks every rule itself (gossip.limits), so its 422 names it.


def key_schema(config: Config) -> dict[str, Any]:
    """What JSON Schema can say of a key, and the byte rule it cannot, in words (a
    character takes at least one byte, so the character bound is necessary, not enough)."""
    n = config.max_key_bytes
    return {"minLength": 1, "maxLength": n, "not": {"pattern": f"^{RESERVED}"},
            "description": f"1 to {n} bytes as UTF-8 (at most {n} characters, fewer where a character "
                           f"takes several bytes); keys starting with {RESERVED!r} are reserved"}


def value_schema(config: Config) -> dict[str, Any]:
    return {"description": f"any JSON value, null included: at most {config.max_value_bytes} bytes as "
                           f"compact JSON, arrays and objects nested at most {config.max_value_depth} deep, "
                           "integers within 64 bits"}


TTL_MAX = 10**12  # seconds (31,700 years): within the clock's range for ages to come


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):  # (pydantic would take true and false for 1 and 0)
        raise ValueError("expected a number, not true or false")
    return value


Number = BeforeValidator(_not_a_boolean)


class SetBody(BaseModel):
    key: str = Field(json_schema_extra=key_schema(Config()))
    value: Any = Field(json_schema_extra=value_schema(Config()))
    ttl: Annotated[float | None, Number] = Field(None, gt=0, le=TTL_MAX, description="seconds to expiry")
    replicas: Annotated[int, Number] = Field(
        0, ge=0, le=64, description="answer once this many peers hold it (at most the live peers, else 409)"
    )


class DeleteBody(BaseModel):
    key: str = Field(json_schema_extra=key_schema(Config()))


class EntryOut(BaseModel):
    key: str
    value: Any
    timestamp: list[int] = Field(min_length=2, max_length=2,
                                 description="hybrid logical clock: [wall_ms, counter]")
    node: str = Field(description="id of the node that wrote it")
    deleted: bool = False
    expires_at: int | None = Field(None, description="wall ms when it expires, if ever")

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(**entry_json(e))


def entry_json(e: Entry) -> dict[str, Any]:
    """An entry as the API shows it (the shape of EntryOut)."""
    return {"key": e.key, "value": e.value, "timestamp": [e.ts.wall, e.ts.counter], "node": e.node,
            "deleted": e.deleted, "expires_at": e.expires_at}


class AllValues(BaseModel):
    node: str
    values: dict[str, Any]


# -- Who may call what: one rule (needs_token), one check (authorize), and a guard per
# route that node.openapi reads to declare the credential exactly where it is needed.


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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents in the OpenAPI spec (422 replaces FastAPI's
    default, whose `detail` is only ever a list)."""
    return {code: {"model": ErrorOut} for code in codes}


# Every route takes its guard; node.openapi declares the 401 (and 403) where the node's
# settings make it possible, and each route the other errors it can answer with.
read_router = APIRouter(tags=["shared state"])
write_router = APIRouter(route_class=LimitedRoute, tags=["shared state"], responses=_errors(400, 413, 422))
_reads, _writes = [Depends(reader)], [Depends(writer)]
admin_router = APIRouter(route_class=LimitedRoute, tags=["admin"], dependencies=[Depends(admin)],
                         responses=_errors(409))  # (signing off, or a key that is not there)
gossip_router = APIRouter(tags=["gossip"])


def _caller_error(exc: CallerError) -> HTTPException:
    return HTTPException(422, str(exc))


def _json(content: object) -> Response:
    return Response(dumps(content), media_type="application/json")


# The two hot routes resolve one plain dependency, their guard (a chain of them costs more
# than the work itself), and encode the answer with orjson instead of validating it again.
# 503: the node refuses writes while its clock is unfit for them (node.clockcheck).
_REFUSED: dict[int | str, dict[str, Any]] = {503: {"model": ErrorOut, "description": (
    "this node takes no writes now: its clock (or its hybrid logical clock, restored from the data "
    "directory) runs more than max_offset ahead of the cluster's, or it has not compared its clock "
    "with another host's yet; the detail gives the offset measured, the limit and what to fix")}}


@write_router.post("/set", response_model=EntryOut, responses={**_errors(409, 504), **_REFUSED},
                   dependencies=_writes)
async def set_value(body: SetBody, request: Request) -> Response:
    """Store a value under a key; it spreads to every node. With `replicas`, the answer
    waits until that many peers hold it (504 saying how many did, if they do not; 409,
    writing nothing, if fewer peers than that are alive)."""
    state = state_of(request)
    await state.writable()  # (a node just started compares its clock with the cluster's first)
    try:
        if body.replicas:
            entry = await state.aset(body.key, body.value, body.ttl, body.replicas)
        else:
            entry = state.set(body.key, body.value, body.ttl)
    except TooFewPeers as exc:  # a valid request the cluster cannot meet as it stands
        raise HTTPException(409, str(exc)) from exc
    except CallerError as exc:
        raise _caller_error(exc) from exc
    except ReplicationTimeout as exc:
        raise HTTPException(504, str(exc)) from exc
    except WritesRefused as exc:
        raise HTTPException(503, str(exc)) from exc
    return _json(entry_json(entry))


@read_router.get("/get", response_model=EntryOut | AllValues, responses=_errors(404), dependencies=_reads)
async def get_value(request: Request, key: Annotated[str | None, Query()] = None) -> Response:
    """One key's entry, or with no key every live key and its value."""
    state = state_of(request)
    if key is None:
        return _json({"node": state.id, "values": state.snapshot()})
    entry = state.entry(key)
    if entry is None:
        raise HTTPException(404, f"key {key!r} not found (absent, deleted or expired)")
    return _json(entry_json(entry))


async def get_value_hot(request: Request, key: str | None) -> Response:
    """GET /get as node.hotpaths serves it, past the router: its guard, then the route."""
    authorize(request, Access.READ)
    return await get_value(request, key)


@write_router.post("/delete", response_model=EntryOut, responses=_REFUSED, dependencies=_writes)
async def delete_value(body: DeleteBody, state: StateDep) -> EntryOut:
    """Delete a key on every node (a tombstone that wins over older writes)."""
    await state.writable()
    try:
        return EntryOut.of(state.delete(body.key))
    except CallerError as exc:
        raise _caller_error(exc) from exc
    except WritesRefused as exc:
        raise HTTPException(503, str(exc)) from exc


@read_router.get("/members", dependencies=_reads)
async def members(state: StateDep) -> dict[str, Any]:
    """This node's view of the cluster: each member's status (alive, suspect, dead or
    left), the failure detector's phi, and when its heartbeat last moved."""
    return {"members": state.members()}


# -- health: 200 only when the node is in the cluster (node.health says why not) ---------


class HealthOut(BaseModel):
    status: str = Field(description='"ok" (200), or "unavailable" (503) with the problems')
    node: str
    version: str
    accepting_writes: bool = Field(description="false while writes get 503: our clock (or the hybrid "
                                   "logical clock restored from the data directory) runs beyond max_offset "
                                   "ahead of the cluster's, or is not compared with another host's yet")
    alone: str | None = Field(None, description="why a node with no peers is healthy (no seeds: by design)")
    problems: list[dict[str, Any]] | None = Field(
        None, description="each: problem (not_joined, refused, isolated, clock_ahead, hlc_ahead, "
        "clock_unchecked, refusing_peers, dns_seed_unresolved), "
        "detail (what is wrong and what to change) and peers (each peer's status, reason and fix; for the "
        "clock's problems each node of another host, its clock's offset from ours and the uncertainty)",
    )
    warnings: list[dict[str, Any]] | None = Field(None, description="as problems, on a node in the cluster")


_not_in_cluster = {"model": HealthOut, "description": "not in the cluster: the problems"}


@read_router.get("/health", dependencies=_reads, response_model=HealthOut, responses={503: _not_in_cluster})
async def health(state: StateDep) -> Response:
    """200 when the node is in the cluster, or alone by design (no seeds: it says so);
    otherwise 503 naming each problem (not joined, refused by its peers, isolated, clock
    ahead of the cluster's, hybrid clock restored ahead, clock not yet compared) and what
    to change."""
    verdict = state.health.update()
    return Response(dumps(health_answer(state, verdict)), 200 if verdict.ok else 503,
                    media_type="application/json")


@read_router.get("/digest", dependencies=_reads)
def digest(state: StateDep) -> dict[str, Any]:
    """A hash of the live state: equal on two nodes iff their live states are equal."""
    value, keys = state.state_hash()
    return {"digest": value, "keys": keys}


@read_router.get("/stats", dependencies=_reads)
async def stats(state: StateDep) -> dict[str, Any]:
    """Counters of gossip traffic, for monitoring and benchmarks."""
    return state.stats()


async def receive_gossip(request: Request) -> Response:
    """Peer exchange (for peers only, from the `allow` networks): a coded message in, a
    coded reply out. A plain route, with no dependency to resolve: it is the hot path."""
    state = state_of(request)
    host = request.client.host if request.client else ""
    if not state.allows(host):
        problem = f"gossip from {host or 'an unknown address'} is not allowed"
        raise _refuse(state, host, 403, "NotAllowed", problem)
    body = await read_limited(request, state.config.max_body_bytes)
    try:
        reply = state.receive(body, request.headers)
    except PeerError as exc:
        status, what = _refusal(exc)
        raise _refuse(state, host, status, type(exc).__name__, f"{what}: {exc}") from exc
    if reply is None:
        return Response(status_code=204, headers={TIME_HEADER: str(wall_ms())})  # our time, on every answer
    headers = {TIME_HEADER: str(wall_ms()), **state.sign(reply)}  # our time: the peer estimates our offset
    return Response(reply, media_type="application/json", headers=headers)


def _refusal(exc: PeerError) -> tuple[int, str]:
    if isinstance(exc, ReplayError):
        return 403, "refused gossip"
    if isinstance(exc, AuthError):
        return 401, "unauthenticated gossip"
    if isinstance(exc, IncompatibleMessage):
        return 409, "incompatible gossip"
    return 400, "rejected gossip"


def _refuse(state: SharedState, host: str, status: int, reason: str, detail: str) -> HTTPException:
    """Refuse a peer's gossip, noted for /health, naming the reason and our time so the
    peer can tell why (and how far apart our clocks are)."""
    state.peers.refused(host, status, reason, detail)
    if reason == "NotAllowed":
        state.rejected[reason] += 1  # (the others are counted where they are found)
    return HTTPException(status, detail, headers={REFUSAL_HEADER: reason, TIME_HEADER: str(wall_ms())})


gossip_router.add_route("/gossip", receive_gossip, methods=["POST"], include_in_schema=False)


HEX_KEY = "[0-9a-fA-F]{64}"  # exactly (the flag and variable take spaces around it, the API does not)


class KeyBody(BaseModel):
    key: str = Field(json_schema_extra={"pattern": f"^{HEX_KEY}$"}, description="64 hex digits")


def _ring(state: SharedState) -> KeyRing:
    if state.keyring is None:
        raise HTTPException(409, "gossip signing is off on this node (no gossip key)")
    return state.keyring


@admin_router.get("/admin/keys")
async def list_keys(state: StateDep) -> dict[str, object]:
    """Ids of the installed keys and of the primary one (never the keys themselves)."""
    return _ring(state).describe()


@admin_router.post("/admin/keys", responses=_errors(400, 413, 422))
async def install_key(body: KeyBody, state: StateDep) -> dict[str, object]:
    """Install a key that verifies; step 1 of a rotation, safe to repeat."""
    try:
        if not re.fullmatch(HEX_KEY, body.key):
            raise KeyRingError("a key must be 64 hex digits")
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

