"""The lifespan helper that runs shared state inside any FastAPI app, and the
standalone node, which is just an app that uses it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI

from node.api import router
from node.settings import Settings
from node.state import SharedState

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def shared_state_lifespan(
    settings: Settings, client: httpx.AsyncClient | None = None
) -> Lifespan:
    """A FastAPI lifespan that starts a node's gossip loops with the app and stops them
    with it; the node's SharedState is at app.state.shared_state."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = SharedState(settings, client)
        app.state.shared_state = state
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(state.run)
                yield
                tg.cancel_scope.cancel()
        finally:
            await state.aclose()

    return lifespan


def create_app(settings: Settings, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The standalone node: the shared-state router and nothing else."""
    app = FastAPI(
        title=f"gossip node {settings.id}",
        description="One node of a gossip cluster: local reads, writes spread by gossip.",
        lifespan=shared_state_lifespan(settings, client),
    )
    app.include_router(router)
    return app


def main(argv: list[str] | None = None) -> None:
    """`gossip-node`: run one node under uvicorn."""
    import uvicorn

    settings = Settings.parse(argv)
    logging.basicConfig(level=settings.log_level.upper())
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port,
        log_level=settings.log_level, access_log=False,
    )  # fmt: skip

