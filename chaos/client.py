"""The client: a few concurrent workers sending writes, deletes and reads of a small key
space to random nodes, recording every operation with its outcome (chaos.ops.Op).

Most writes go to the small key space, where they collide; the checker then sees a lost
write only if it was its key's last. The others each go to a key of their own, written
once and never deleted, so every one of them must be in the final state."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import httpx

from chaos.nodes import TOKEN
from chaos.ops import Kind, Op

OPS: tuple[Kind, ...] = ("write", "delete", "read")
KEYS = 8  # few keys, so that writes collide
ONCE = 0.25  # the share of writes that go to a key of their own
TIMEOUT = httpx.Timeout(1.0, connect=0.5)
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # nothing reached the node


async def run(urls: dict[str, str], seed: int, workers: int, t0: float, stop: asyncio.Event) -> list[Op]:
    """Operations until `stop` is set; times are seconds since `t0` (time.monotonic)."""
    ops: list[Op] = []
    await asyncio.gather(
        *(_worker(w, urls, random.Random(f"{seed}/{w}"), t0, stop, ops) for w in range(workers))
    )
    return sorted(ops, key=lambda op: op.start)


async def _worker(w: int, urls: dict[str, str], rng: random.Random, t0: float, stop: asyncio.Event,
                  ops: list[Op]) -> None:
    names: Sequence[str] = sorted(urls)
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http:
        n = 0
        while not stop.is_set():
            n += 1
            kind = rng.choices(OPS, weights=[5, 1, 4])[0]
            node, key = rng.choice(names), f"k{rng.randrange(KEYS)}"
            value = f"c{w}-{n}" if kind == "write" else None
            if kind == "write" and rng.random() < ONCE:
                key = f"once-{value}"
            ops.append(await _one(http, urls[node], node, kind, key, value, t0))
            await asyncio.sleep(rng.uniform(0.005, 0.03))  # pacing: the cores are shared with the nodes


async def _one(http: httpx.AsyncClient, url: str, node: str, kind: Kind, key: str, value: str | None,
               t0: float) -> Op:
    start = time.monotonic() - t0
    try:
        if kind == "read":
            response = await http.get(url + "/get", params={"key": key})
        else:
            body = {"key": key, "value": value} if kind == "write" else {"key": key}
            response = await http.post(url + ("/set" if kind == "write" else "/delete"), json=body)
    except NOT_SENT:
        return Op(kind, key, value, node, start, time.monotonic() - t0, "fail")
    except httpx.TransportError:  # sent, then a timeout or a broken connection: it may have been applied
        return Op(kind, key, value, node, start, time.monotonic() - t0, "unknown")
    end = time.monotonic() - t0
    code = response.status_code
    if kind == "read" and code in (200, 404):
        return Op(kind, key, response.json()["value"] if code == 200 else None, node, start, end, "ok")
    if kind != "read" and code == 200:
        entry = response.json()
        wall, counter = entry["timestamp"]
        return Op(kind, key, value, node, start, end, "ok", ts=(wall, counter), writer=entry["node"])
    # 4xx and 503 refuse before anything is written; any other answer leaves it open
    return Op(kind, key, value, node, start, end, "fail" if 400 <= code < 500 or code == 503 else "unknown")
