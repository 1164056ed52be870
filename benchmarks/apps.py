"""The baselines, with the node's API shape: `GET /get?key=K` and `POST /set`.

`bare` keeps values in a dict (the ceiling for a FastAPI app); `redis_backed` keeps
them in Redis through redis-py's asyncio client (what users do today), at REDIS_URL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from node.server.settings import Settings
from node.state import SharedState
from node.web.app import create_app, shared_state_lifespan
from node.web.http_basics import StateDep


class SetBody(BaseModel):
    key: str
    value: Any


bare = FastAPI(title="bare dict baseline")
_values: dict[str, Any] = {}


@bare.get("/health")
async def bare_health() -> dict[str, str]:
    return {"status": "ok"}


@bare.get("/get")
async def bare_get(key: str) -> dict[str, Any]:
    if key not in _values:
        raise HTTPException(404, "not found")
    return {"key": key, "value": _values[key]}


@bare.post("/set")
async def bare_set(body: SetBody) -> dict[str, Any]:
    _values[body.key] = body.value
    return {"key": body.key, "value": body.value}


@asynccontextmanager
async def _redis_lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.redis = aioredis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    try:
        yield
    finally:
        await app.state.redis.aclose()


redis_backed = FastAPI(title="redis-py asyncio baseline", lifespan=_redis_lifespan)


@redis_backed.get("/health")
async def redis_health() -> dict[str, str]:
    return {"status": "ok"}


@redis_backed.get("/get")
async def redis_get(key: str) -> dict[str, Any]:
    value = await redis_backed.state.redis.get(key)
    if value is None:
        raise HTTPException(404, "not found")
    return {"key": key, "value": value}


@redis_backed.post("/set")
async def redis_set(body: SetBody) -> dict[str, Any]:
    await redis_backed.state.redis.set(body.key, body.value)
    return {"key": body.key, "value": body.value}


def node_async_get() -> FastAPI:
    """The standalone gossip node plus `GET /fast/get`: a user's own `async def` route
    reading the shared state (`state.entry`) and returning a plain dict, as an app that
    embeds shared state would. Settings come from the GOSSIP_* environment
    (`uvicorn --factory`)."""
    app = create_app(Settings.parse([]))

    @app.get("/fast/get")
    async def fast_get(key: str, request: Request) -> dict[str, Any]:
        state: SharedState = request.app.state.shared_state
        entry = state.entry(key)
        if entry is None:
            raise HTTPException(404, "not found")
        return {"key": key, "value": entry.value, "timestamp": [entry.ts.wall, entry.ts.counter],
                "node": entry.node}

    return app


def embedded_state_dep() -> FastAPI:
    """An app of the user's embedding a node as the README shows (`shared_state_lifespan`,
    the `StateDep` dependency), with the bare app's `GET /get` reading the shared state
    instead of a dict. Its node has no gossip listener of its own (nothing reaches it
    unless GOSSIP_SEEDS names peers): for measuring a request in process."""
    lifespan = shared_state_lifespan(Settings.parse([]), own_listener=False)
    app = FastAPI(title="embedded, StateDep", lifespan=lifespan)

    @app.get("/get")
    async def embedded_get(key: str, state: StateDep) -> dict[str, Any]:
        if key not in state:
            raise HTTPException(404, "not found")
        return {"key": key, "value": state[key]}

    return app
