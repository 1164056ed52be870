"""What one request costs an app in process: the app called through ASGI with a `GET`
scope, as uvicorn calls it but with no server, socket or load generator, so far less noisy
than wrk on a shared machine. Apps run their lifespan (a node starts, alone: no peers
gossip with it). Each app serves `slices` runs of `requests` in turn, and the figure is
the median of its runs' CPU microseconds per request (CPU time of this process, so that
other work on the machine weighs little)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import ASGIApp, Message


@dataclass(frozen=True)
class Target:
    app: Any  # a FastAPI (or Starlette) app
    url: str  # path and query
    ready: Callable[[Any], None] = lambda app: None  # called with the app once its lifespan runs


def scope(path: str, query: str) -> dict[str, Any]:
    """A fresh scope per request (the app writes into it)."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _run(app: ASGIApp, url: str, requests: int) -> float:
    """CPU microseconds per request of `requests` GETs of `url`; raises unless each answers 200."""
    path, _, query = url.partition("?")
    statuses: set[int] = set()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    started = time.process_time()  # this process's CPU time: others' work on the machine is left out
    for _ in range(requests):
        await app(scope(path, query), _receive, send)
    elapsed = time.process_time() - started
    if statuses != {200}:
        raise RuntimeError(f"{url} answered {sorted(statuses)}")
    return elapsed / requests * 1e6


async def _measure(targets: Mapping[str, Target], requests: int, slices: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {name: [] for name in targets}
    async with AsyncExitStack() as started:
        for t in targets.values():
            await started.enter_async_context(t.app.router.lifespan_context(t.app))
            t.ready(t.app)
            await _run(t.app, t.url, requests)  # warm up
        for _ in range(slices):
            for name, t in targets.items():
                runs[name].append(await _run(t.app, t.url, requests))
    return {name: statistics.median(r) for name, r in runs.items()}


def per_request_us(targets: Mapping[str, Target], requests: int = 200, slices: int = 25) -> dict[str, float]:
    """Median CPU microseconds per request of each target, the targets taken in turn."""
    return anyio.run(_measure, targets, requests, slices)
