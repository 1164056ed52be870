"""A service registry: each worker registers itself as an instance of a service while it
runs, and any worker lists the live instances, fleet-wide. An instance goes when its
worker leaves (at once), dies (once found dead) or stops renewing (its TTL).

    GOSSIP_TAGS=zone=a uvicorn examples.registry_app:app --workers 4 --port 8000
    curl localhost:8000/instances/api       # every worker's instance, from any worker
    curl localhost:8000/services/api        # the same, as the node's own route shows it

REGISTRY_SERVICE (default "api"), REGISTRY_URL (what to register, default the worker's
gossip address) and REGISTRY_TTL (seconds, default 30) change what is registered.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from node import SharedState, StateDep, router, shared_state_lifespan

SERVICE = os.environ.get("REGISTRY_SERVICE", "api")
TTL = float(os.environ.get("REGISTRY_TTL", "30"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with shared_state_lifespan()(app):
        state: SharedState = app.state.shared_state
        url = os.environ.get("REGISTRY_URL") or state.settings.address
        state.register(SERVICE, url, meta={"pid": os.getpid()}, ttl=TTL)
        yield  # on shutdown the node withdraws the instance before it says goodbye


app = FastAPI(title="service registry", lifespan=lifespan)
app.include_router(router)  # GET /services/{service}, /members (with each node's tags)


@app.get("/instances/{service}")
def instances(service: str, state: StateDep) -> list[dict[str, Any]]:
    return [{"node": i.node, "url": i.url, "meta": i.meta} for i in state.instances(service)]
