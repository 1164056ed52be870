"""The rate-limit benchmark's app, one limiter chosen by BENCH_LIMITER, for one client key:

- ours: node.RateLimit over the shared state (every worker and host counts together);
- slowapi-memory: slowapi with its default in-memory storage (each worker counts alone);
- slowapi-redis: slowapi on the `limits` Redis storage at BENCH_REDIS (exact, one count);
- slowapi-gossip: slowapi on `node.limits_storage.URI`, the node's `limits` storage, as the
  README tells a slowapi user to switch (every worker and host counts together);
- none: no limiter.

BENCH_RATE is the limit (default "500/10 seconds")."""

from __future__ import annotations

import os
from typing import Any

from fastapi import Depends, FastAPI, Request
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded

from node import RateLimit, shared_state_lifespan
from node.web.limits_storage import URI as GOSSIP_URI

LIMITER = os.environ.get("BENCH_LIMITER", "none")
RATE = os.environ.get("BENCH_RATE", "500/10 seconds")
STORAGE = {"slowapi-memory": "memory://", "slowapi-redis": os.environ.get("BENCH_REDIS", ""),
           "slowapi-gossip": GOSSIP_URI}
NODE = LIMITER in ("ours", "slowapi-gossip")  # a node in every worker


def one_client(request: Request) -> str:
    return "client"


app = FastAPI(lifespan=shared_state_lifespan() if NODE else None)


@app.get("/ready")
async def ready() -> dict[str, str]:
    """Unlimited: for the benchmark to wait on without spending the limit."""
    return {"limiter": LIMITER}


if LIMITER == "ours":

    @app.get("/limited", dependencies=[Depends(RateLimit(RATE, key=one_client))])
    async def ours() -> dict[str, Any]:
        return {"ok": True}

elif LIMITER in STORAGE:
    limiter = Limiter(key_func=one_client, storage_uri=STORAGE[LIMITER])
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

    @app.get("/limited")
    @limiter.limit(RATE)
    async def theirs(request: Request) -> dict[str, Any]:
        return {"ok": True}

elif LIMITER == "none":

    @app.get("/limited")
    async def unlimited() -> dict[str, Any]:
        return {"ok": True}

else:
    raise SystemExit(f"BENCH_LIMITER={LIMITER!r}: expected ours, slowapi-memory, slowapi-redis, "
                     "slowapi-gossip or none")
