"""A user's app for the recipes' handover test (tests/processes/test_netns_recipes.py): it
embeds a node (GOSSIP_* variables), registers one instance of the service "api" for its
node, and runs the singleton job "tick" every RECIPES_EVERY seconds (default 1), which
records which node ran each tick, and when (wall-clock seconds), as `ran/<tick>` in the
shared state. It mounts the
node's client routes, so /get shows the ticks and /services/api the instances.

    GOSSIP_NODE_ID=n1 uvicorn tests.recipes_app:app --port 8000
"""

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from node import SharedState, router, shared_state_lifespan
from node.jobs import current_tick

EVERY = float(os.environ.get("RECIPES_EVERY", "1"))
SERVICE, JOB = "api", "tick"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with shared_state_lifespan()(app):
        state: SharedState = app.state.shared_state
        state.register(SERVICE, state.settings.address)

        @state.singleton(JOB, every=EVERY)
        async def tick() -> None:
            state.set(f"ran/{current_tick()}", {"node": state.id, "at": time.time()})

        yield


app = FastAPI(title="a registered instance and a job run once a tick, fleet-wide", lifespan=lifespan)
app.include_router(router)
