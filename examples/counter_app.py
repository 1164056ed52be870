"""Fleet-wide counters: every worker and host counts, none loses an increment.

    uvicorn examples.counter_app:app --workers 4 --port 8000
    curl -X POST localhost:8000/hits/home        # counted by whichever worker answers
    curl localhost:8000/hits/home                # any worker: the fleet-wide total

`state.set(k, state.get(k, 0) + 1)` in four workers loses the increments made at the
same moment (last writer wins); `state.incr` never does: each node counts in a slot of
its own and the total is the sum of the slots.
"""

import os
from typing import Any

from fastapi import FastAPI

from node import StateDep, shared_state_lifespan

app = FastAPI(lifespan=shared_state_lifespan())


@app.post("/hits/{page}")
def hit(page: str, state: StateDep) -> dict[str, Any]:
    return {"count": state.incr(f"hits:{page}"), "pid": os.getpid()}


@app.get("/hits/{page}")
def hits(page: str, state: StateDep) -> dict[str, Any]:
    return {"count": state.count(f"hits:{page}"), "pid": os.getpid()}
