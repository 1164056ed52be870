"""A user's own app with shared state: fleet-wide feature flags and a view of which
workers are busy, consistent across `uvicorn --workers N` and across hosts.

    uvicorn examples.user_app:app --workers 4 --port 8000
    curl -X PUT localhost:8000/flags/dark-mode -H 'content-type: application/json' -d 'true'
    curl localhost:8000/flags                      # any worker: {"dark-mode": true}
    curl -X POST 'localhost:8000/jobs?seconds=2' & curl localhost:8000/busy
"""

from typing import Any

import anyio
from fastapi import Body, FastAPI

from node import StateDep, shared_state_lifespan

app = FastAPI(title="flags and busy workers", lifespan=shared_state_lifespan())

FLAG, BUSY = "flag:", "busy:"


@app.put("/flags/{name}")
def set_flag(name: str, state: StateDep, enabled: bool = Body()) -> dict[str, bool]:
    state.set(FLAG + name, enabled)
    return {name: enabled}


@app.get("/flags")
def flags(state: StateDep) -> dict[str, Any]:
    return {key.removeprefix(FLAG): on for key, on in state.items() if key.startswith(FLAG)}


@app.post("/jobs")
async def run_job(state: StateDep, seconds: float = 1.0) -> dict[str, str]:
    """Mark this worker busy while it works. The TTL clears the flag even if the
    worker dies mid-job."""
    key = BUSY + state.id
    state.set(key, {"job_seconds": seconds}, ttl=seconds + 5)
    try:
        await anyio.sleep(seconds)
    finally:
        state.delete(key)
    return {"done_by": state.id}


@app.get("/busy")
def busy(state: StateDep) -> list[str]:
    """Workers busy right now, fleet-wide."""
    return sorted(key.removeprefix(BUSY) for key in state if key.startswith(BUSY))
