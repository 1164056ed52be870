"""Fleet-wide rate limits: one count per client across every worker and host.

    uvicorn examples.ratelimit_app:app --workers 4 --port 8000
    for i in $(seq 60); do curl -s -o /dev/null -w '%{http_code} ' localhost:8000/search; done
    # 200 x50, then 429 with Retry-After: the fifty went to four workers, counted as one

`/search` uses this project's dependency; `/export` is an unchanged slowapi limiter whose
storage is switched to the shared state with its `storage_uri`.
"""

from typing import Any

from fastapi import Depends, FastAPI, Request
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

import node.limits_storage
from node import RateLimit, StateDep, shared_state_lifespan

app = FastAPI(lifespan=shared_state_lifespan())

# slowapi, as its users already have it: only storage_uri changes (per-worker memory before)
limiter = Limiter(key_func=get_remote_address, storage_uri=node.limits_storage.URI)
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]


@app.get("/search", dependencies=[Depends(RateLimit("50/minute"))])
def search(state: StateDep, q: str = "") -> dict[str, Any]:
    return {"q": q, "node": state.id}


@app.get("/export")
@limiter.limit("50/minute")
def export(request: Request) -> dict[str, str]:
    return {"export": "ok"}
