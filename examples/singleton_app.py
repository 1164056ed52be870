"""Run-once jobs: a periodic job that runs in one worker of the whole fleet per period,
not in every worker (the owner is picked by rendezvous hashing over the live members;
another takes over when it leaves or dies).

    uvicorn examples.singleton_app:app --workers 4 --port 8000
    curl localhost:8000/report        # the last report: which tick, which worker

SINGLETON_EVERY (seconds, default 60) sets the period; with SINGLETON_RUNS_DIR set, each
run also appends "<tick> <pid>" to a file per worker there (the tests read them).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from gossip.store import JSON
from node import SharedState, StateDep, shared_state_lifespan
from node.jobs import current_tick

EVERY = float(os.environ.get("SINGLETON_EVERY", "60"))
RUNS_DIR = os.environ.get("SINGLETON_RUNS_DIR")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with shared_state_lifespan()(app):
        state: SharedState = app.state.shared_state

        @state.singleton("report", every=EVERY)
        async def report() -> None:
            tick = current_tick()
            state.set("report:last", {"tick": tick, "pid": os.getpid(), "keys": len(state)})
            if RUNS_DIR:
                with open(Path(RUNS_DIR) / f"{os.getpid()}.runs", "a") as runs:
                    runs.write(f"{tick} {os.getpid()}\n")

        yield


app = FastAPI(title="a job run once per period, fleet-wide", lifespan=lifespan)


@app.get("/report")
def last_report(state: StateDep) -> JSON:
    return state.get("report:last")
