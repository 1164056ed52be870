"""Nodes as in-process ASGI apps, reached through httpx with no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from gossip.config import Config
from node.server.settings import Settings
from node.web.app import create_app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield client


def single_node(**config: object) -> FastAPI:
    return create_app(Settings(node_id="solo", config=Config.for_tests(**config)))
