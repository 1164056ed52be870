"""HTTP routes for the recipes: the change stream as Server-Sent Events, and the
instances of a service. Read routes: the api token only with protect_reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from gossip.errors import CallerError
from gossip.jsontext import dumps
from node.recipes.watch import DEFAULT_BUFFER, MAX_BUFFER, Watch, WatchDropped
from node.web.api import entry_json
from node.web.http_basics import Access, ErrorOut, Guard, StateDep, state_of

KEEPALIVE = 15.0  # seconds between comment lines on a quiet stream, so proxies keep it open

recipes_router = APIRouter(tags=["recipes"], dependencies=[Depends(Guard(Access.READ))])  # reads


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


_EVENTS = """Server-Sent Events, until the client goes or the stream is cut off:

- `event: change`, `data:` the entry as `GET /get?key=` shows it (key, value, timestamp
  `[wall_ms, counter]`, node, deleted, expires_at): every change this node applies, once,
  in the order it applies them;
- `event: dropped`, `data: {"reason": "..."}`, the last event: the client fell more than
  `buffer` changes behind (or the node was reset); read the state again and reconnect;
- comment lines (`: ...`) now and then, to keep the connection open."""


@recipes_router.get(
    "/watch", response_class=Response,  # (EventStream: its errors would be declared as events)
    responses={200: {"description": _EVENTS,
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}},
               422: {"model": ErrorOut, "description": "an invalid query parameter"}},
)
async def watch(
    request: Request,
    prefix: Annotated[str, Query(description="only keys starting with this")] = "",
    buffer: Annotated[int, Query(ge=1, le=MAX_BUFFER, description="changes that may wait unread")]
    = DEFAULT_BUFFER,
) -> EventStream:
    """Stream every change to the keys starting with `prefix` as Server-Sent Events.
    Keys under the reserved prefix `_gossip/` only when `prefix` starts with it."""
    try:
        changes = state_of(request).watch(prefix, buffer)  # registered before the answer starts
    except CallerError as exc:
        raise HTTPException(422, str(exc)) from exc
    return EventStream(_events(changes, prefix), headers={"cache-control": "no-cache"})


async def _events(changes: Watch, prefix: str) -> AsyncIterator[bytes]:
    try:
        yield b": watching keys starting with " + dumps(prefix) + b"\n\n"
        while True:
            entry, dropped = None, None
            with anyio.move_on_after(KEEPALIVE):  # (no yield inside a cancel scope)
                try:
                    entry = await changes.__anext__()
                except WatchDropped as exc:
                    dropped = exc.reason
                except StopAsyncIteration:
                    return
            if dropped is not None:
                yield b"event: dropped\ndata: " + dumps({"reason": dropped}) + b"\n\n"
                return
            if entry is None:
                yield b": keep-alive\n\n"
            else:
                yield b"event: change\ndata: " + dumps(entry_json(entry)) + b"\n\n"
    finally:
        await changes.aclose()


class InstanceOut(BaseModel):
    node: str
    url: str
    meta: Any = None


class InstancesOut(BaseModel):
    service: str
    instances: list[InstanceOut]


@recipes_router.get("/services/{service}", response_model=InstancesOut,
                    responses={422: {"model": ErrorOut, "description": "an invalid name"}})
async def instances(service: str, state: StateDep) -> dict[str, Any]:
    """The live instances of a service (registered with `state.register`), but those of
    nodes this node sees as dead or left."""
    try:
        found = state.instances(service)
    except CallerError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {"service": service, "instances": [{"node": i.node, "url": i.url, "meta": i.meta} for i in found]}
