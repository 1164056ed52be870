"""Change streams: keep a live audit of the feature flags, fleet-wide, from each node's
own change stream (`state.watch`), and serve the same stream to browsers and scripts.

    uvicorn examples.watch_app:app --workers 4 --port 8000
    curl -N 'localhost:8000/watch?prefix=flag:'                  # Server-Sent Events
    curl -X PUT localhost:8000/flags/dark-mode -H 'content-type: application/json' -d 'true'
    curl localhost:8000/audit                                    # the last flag changes
"""

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus
from fastapi import Body, FastAPI

from node import StateDep, router, shared_state_lifespan
from node.state import SharedState
from node.watch import WatchDropped

FLAG = "flag:"
audit: deque[dict[str, Any]] = deque(maxlen=100)  # this worker's view of the last changes


async def follow_flags(state: SharedState, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
    """Every flag change this node applies, its own and its peers', in order. If the
    stream is cut off (this worker fell behind), note it and watch again."""
    while True:
        changes = state.watch(prefix=FLAG)  # changes from here on are in it
        task_status.started()
        task_status = TASK_STATUS_IGNORED
        try:
            async for change in changes:
                audit.append({"flag": change.key.removeprefix(FLAG), "on": change.value,
                              "deleted": change.deleted, "by": change.node})
        except WatchDropped as exc:
            audit.append({"dropped": exc.reason})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with shared_state_lifespan()(app), anyio.create_task_group() as tg:
        await tg.start(follow_flags, app.state.shared_state)
        yield
        tg.cancel_scope.cancel()


app = FastAPI(title="flag audit from the change stream", lifespan=lifespan)
app.include_router(router)  # the node's routes, GET /watch among them


@app.put("/flags/{name}")
def set_flag(name: str, state: StateDep, enabled: bool = Body()) -> dict[str, bool]:
    state.set(FLAG + name, enabled)
    return {name: enabled}


@app.delete("/flags/{name}")
def delete_flag(name: str, state: StateDep) -> dict[str, str]:
    state.delete(FLAG + name)
    return {"deleted": name}


@app.get("/audit")
def flag_audit() -> list[dict[str, Any]]:
    return list(audit)
