"""Measure how long a write takes to be readable on every node: write through one node,
then poll every node concurrently until each returns the new value."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import httpx


async def _wait_for(
    client: httpx.AsyncClient, url: str, key: str, value: object, started: float, deadline: float
) -> float | None:
    while time.perf_counter() < deadline:
        r = await client.get(url + "/get", params={"key": key})
        if r.status_code == 200 and r.json()["value"] == value:
            return time.perf_counter() - started
        await anyio.sleep(0.005)
    return None


async def spread_times(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    key: str,
    value: object,
    writer: int = 0,
    timeout: float = 10.0,
) -> list[float | None]:
    """Seconds from the start of the write until each node (in `urls` order) read the
    value, or None for a node that did not within `timeout`."""
    started = time.perf_counter()
    r = await client.post(urls[writer] + "/set", json={"key": key, "value": value})
    r.raise_for_status()
    seen: list[float | None] = [None] * len(urls)

    async def watch(i: int) -> None:
        seen[i] = await _wait_for(client, urls[i], key, value, started, started + timeout)

    async with anyio.create_task_group() as tg:
        for i in range(len(urls)):
            tg.start_soon(watch, i)
    return seen


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
