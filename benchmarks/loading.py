"""Helpers shared by the parts: filling a node with keys, waiting for agreement."""

from __future__ import annotations

import asyncio
import time

from benchmarks.rawhttp import Connection


async def fill(port: int, keys: int, value: str, start: int = 0, connections: int = 16) -> None:
    """POST /set `keys` keys (key-<i>) to one node, over a few concurrent connections."""
    queue = iter(range(start, start + keys))

    async def worker() -> None:
        conn = Connection(port)
        try:
            for i in queue:
                status, _ = await conn.post_json("/set", {"key": f"key-{i:06d}", "value": value})
                if status != 200:
                    raise RuntimeError(f"/set answered {status}")
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


async def converge(ports: list[int], keys: int, timeout: float = 120.0) -> float:
    """Wait until every node reports the same /digest over `keys` live keys; seconds."""
    started = time.monotonic()
    conns = [Connection(p) for p in ports]
    try:
        while True:
            answers = [(await c.get_json("/digest"))[1] for c in conns]
            if len({a["digest"] for a in answers}) == 1 and answers[0]["keys"] == keys:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                counts = [a["keys"] for a in answers]
                raise TimeoutError(f"no agreement within {timeout} s (keys per node {counts})")
            await asyncio.sleep(0.1)
    finally:
        for c in conns:
            c.close()
