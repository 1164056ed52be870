"""The routes that read and write a node's keys, and what it says of itself (members,
health, digest, stats): a router any FastAPI app can include (node.web.routes gathers it with
the others).

The routes find the node's SharedState at `request.app.state.shared_state`, which the
lifespan helper in node.web.app puts there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from gossip.config import Config
from gossip.errors import CallerError, WritesRefused
from gossip.jsontext import dumps
from gossip.namespaces import RESERVED
from gossip.store import Entry
from node.monitoring.health import answer as health_answer
from node.state import ReplicationTimeout, TooFewPeers
from node.web.http_basics import (
    Access,
    ErrorOut,
    LimitedRoute,
    StateDep,
    authorize,
    errors,
    json_response,
    read_limited,
    reader,
    state_of,
    writer,
)

# -- The bodies, and the limits on them: node.web.openapi restates the schema parts for each
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


# Every route takes its guard; node.web.openapi declares the 401 (and 403) where the node's
# settings make it possible, and each route the other errors it can answer with.
read_router = APIRouter(tags=["shared state"])
write_router = APIRouter(route_class=LimitedRoute, tags=["shared state"], responses=errors(400, 413, 422))
_reads, _writes = [Depends(reader)], [Depends(writer)]


def _caller_error(exc: CallerError) -> HTTPException:
    return HTTPException(422, str(exc))


# The two hot routes resolve one plain dependency, their guard (a chain of them costs more
# than the work itself), and encode the answer with orjson instead of validating it again.
# 503: the node refuses writes while its clock is unfit for them (node.server.clockcheck).
_REFUSED: dict[int | str, dict[str, Any]] = {503: {"model": ErrorOut, "description": (
    "this node takes no writes now: its clock (or its hybrid logical clock, restored from the data "
    "directory) runs more than max_offset ahead of the cluster's, or it has not compared its clock "
    "with another host's yet; the detail gives the offset measured, the limit and what to fix")}}


@write_router.post("/set", response_model=EntryOut, responses={**errors(409, 504), **_REFUSED},
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
    return json_response(entry_json(entry))


async def set_value_hot(request: Request) -> Response | bytes | None:
    """POST /set as node.web.hotpaths serves it, for a JSON body SetBody takes as it is:
    its guard, then the route. Any other request is left to FastAPI, which answers it
    with its own errors in its own order: None if the body is unread, else the body read."""
    media_type = request.headers.get("content-type", "").partition(";")[0]  # none: FastAPI refuses it
    if media_type.strip().lower() != "application/json":
        return None
    raw = await read_limited(request, state_of(request).config.max_body_bytes)
    try:
        body = SetBody.model_validate_json(raw)
    except ValidationError:
        return raw
    authorize(request, Access.WRITE)
    return await set_value(body, request)


@read_router.get("/get", response_model=EntryOut | AllValues, responses=errors(404), dependencies=_reads)
async def get_value(request: Request, key: Annotated[str | None, Query()] = None) -> Response:
    """One key's entry, or with no key every live key and its value."""
    state = state_of(request)
    if key is None:
        return json_response({"node": state.id, "values": state.snapshot()})
    entry = state.entry(key)
    if entry is None:
        raise HTTPException(404, f"key {key!r} not found (absent, deleted or expired)")
    return json_response(entry_json(entry))


async def get_value_hot(request: Request, key: str | None) -> Response:
    """GET /get as node.web.hotpaths serves it, past the router: its guard, then the route."""
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


# -- health: 200 only when the node is in the cluster (node.monitoring.health says why not) --


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


