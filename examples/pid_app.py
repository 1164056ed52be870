"""The seed's demo: which worker answered, and does it see the shared value?

    uvicorn examples.pid_app:app --workers 4 --port 8000
    curl -X POST 'localhost:8000/set?value=hello'   # stores the value and this worker's PID
    curl localhost:8000/get                         # any worker: the same value
"""

import os
from typing import Any

from fastapi import FastAPI

from node import StateDep, shared_state_lifespan

app = FastAPI(lifespan=shared_state_lifespan())


@app.post("/set")
def set_value(value: str, state: StateDep) -> dict[str, Any]:
    state.set("demo", {"value": value, "set_by_pid": os.getpid()})
    return {"value": value, "pid": os.getpid()}


@app.get("/get")
def get_value(state: StateDep) -> dict[str, Any]:
    return {"shared": state.get("demo"), "pid": os.getpid(), "node": state.id}
