"""The HTTP face of a node: a router any FastAPI app can include.

The routes find the node's SharedState at `request.app.state.shared_state`, which the
lifespan helper in node.app puts there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from gossip.errors import CallerError, IncompatibleMessage, PeerError
from gossip.store import Entry
from node.state import SharedState, wall_ms


class LimitedRequest(Request):
    """A request whose body may not exceed max_bytes, declared or streamed (chunked)."""

    max_bytes: int = 0

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise _too_large(self.max_bytes)
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large(self.max_bytes)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body exceeds the limit of {limit} bytes")


class LimitedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            limited_request = LimitedRequest(request.scope, request.receive)
            limited_request.max_bytes = shared_state(request).config.max_body_bytes
            return await handler(limited_request)

        return limited


def shared_state(request: Request) -> SharedState:
    """FastAPI dependency: this node's SharedState."""
    state = getattr(request.app.state, "shared_state", None)
    if state is None:
        raise RuntimeError("shared state is not running: use node.app.shared_state_lifespan")
    return state


StateDep = Annotated[SharedState, Depends(shared_state)]


class SetBody(BaseModel):
    key: str = Field(description="the key, 1 to max_key_bytes UTF-8 bytes")
    value: Any = Field(description="any JSON value, null included")
    ttl: float | None = Field(None, gt=0, description="seconds until the entry expires")


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
        return cls(
            key=e.key, value=e.value, timestamp=(e.ts.wall, e.ts.counter), node=e.origin,
            deleted=e.deleted, expires_at=e.expires_at,
        )  # fmt: skip


class AllValues(BaseModel):
    node: str
    values: dict[str, Any]


read_router = APIRouter(route_class=LimitedRoute, tags=["shared state"])
write_router = APIRouter(route_class=LimitedRoute, tags=["shared state"])
gossip_router = APIRouter(route_class=LimitedRoute, tags=["gossip"])


def _caller_error(exc: CallerError) -> HTTPException:
    return HTTPException(422, str(exc))


@write_router.post("/set", response_model=EntryOut)
def set_value(body: SetBody, state: StateDep) -> EntryOut:
    """Store a value under a key; it spreads to every node."""
    try:
        return EntryOut.of(state.set(body.key, body.value, body.ttl))
    except CallerError as exc:
        raise _caller_error(exc) from exc


@read_router.get("/get", response_model=EntryOut | AllValues)
def get_value(state: StateDep, key: Annotated[str | None, Query()] = None) -> EntryOut | AllValues:
    """One key's entry, or with no key every live key and its value."""
    if key is None:
        return AllValues(node=state.id, values=state.snapshot())
    entry = state.entry(key)
    if entry is None:
        raise HTTPException(404, f"key {key!r} not found (absent, deleted or expired)")
    return EntryOut.of(entry)


@write_router.post("/delete", response_model=EntryOut)
def delete_value(body: DeleteBody, state: StateDep) -> EntryOut:
    """Delete a key on every node (a tombstone that wins over older writes)."""
    try:
        return EntryOut.of(state.delete(body.key))
    except CallerError as exc:
        raise _caller_error(exc) from exc


@read_router.get("/members")
def members(state: StateDep) -> dict[str, Any]:
    """This node's view of the cluster."""
    now = wall_ms()
    me = state.protocol.membership.me
    out = [{"id": me.id, "address": me.address, "status": "alive", "self": True,
            "generation": me.generation, "heartbeat": me.heartbeat, "last_heard_ms_ago": 0}]  # fmt: skip
    for m in state.protocol.membership.members.values():
        out.append({
            "id": m.info.id, "address": m.info.address, "status": m.status, "self": False,
            "generation": m.info.generation, "heartbeat": m.info.heartbeat,
            "last_heard_ms_ago": max(0, now - m.last_heard),
        })  # fmt: skip
    return {"members": sorted(out, key=lambda m: m["id"])}


@read_router.get("/health")
def health(state: StateDep) -> dict[str, Any]:
    return {"status": "ok", "node": state.id}


@read_router.get("/digest")
def digest(state: StateDep) -> dict[str, Any]:
    """A hash of the live state: equal on two nodes iff their live states are equal."""
    value, keys = state.state_hash()
    return {"digest": value, "keys": keys}


@read_router.get("/stats")
def stats(state: StateDep) -> dict[str, Any]:
    """Counters of gossip traffic, for monitoring and benchmarks."""
    return state.stats()


def peer_allowed(request: Request) -> None:
    """Dependency: only addresses in the node's `allow` networks may send gossip."""
    host = request.client.host if request.client else ""
    if not shared_state(request).allows(host):
        raise HTTPException(403, f"gossip from {host or 'an unknown address'} is not allowed")


@gossip_router.post("/gossip", include_in_schema=False, dependencies=[Depends(peer_allowed)])
async def gossip(request: Request, state: StateDep) -> Response:
    """Peer exchange (for peers only): a coded message in, a coded reply out."""
    try:
        reply = state.receive(await request.body())
    except IncompatibleMessage as exc:
        raise HTTPException(409, f"incompatible gossip: {exc}") from exc
    except PeerError as exc:
        raise HTTPException(400, f"rejected gossip: {exc}") from exc
    if reply is None:
        return Response(status_code=204)
    return Response(reply, media_type="application/json")


router = APIRouter()
router.include_router(read_router)
router.include_router(write_router)
