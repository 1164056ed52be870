"""Benchmark: propagation between the workers of one host. Runs examples/pid_app.py
under `uvicorn --workers N`, writes through the shared port, and polls every worker's
own gossip listener until each holds the value.

    python -m scripts.bench_workers --workers 4 --writes 100
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import anyio
import httpx

from node.tools.propagation import percentile
from node.tools.testing import UvicornWorkers

ROOT = Path(__file__).resolve().parent.parent


async def one_write(client: httpx.AsyncClient, app_url: str, listeners: list[str], value: str) -> float:
    started = time.perf_counter()
    done: list[float] = []

    async def write() -> None:
        # Watched concurrently: uvicorn --workers binds its port without IPPROTO_TCP, so
        # asyncio leaves Nagle on and an answer on a kept-alive connection can wait ~40 ms
        # for a delayed ACK; that is the HTTP answer, not the write reaching the workers.
        r = await client.post(app_url + "/set", params={"value": value})
        r.raise_for_status()

    async def watch(address: str) -> None:
        while True:
            got = await client.get(address + "/get", params={"key": "demo"})
            if got.status_code == 200 and got.json()["value"]["value"] == value:
                done.append(time.perf_counter() - started)
                return
            await anyio.sleep(0.002)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            for address in listeners:
                tg.start_soon(watch, address)
    return max(done)


async def measure(workers: UvicornWorkers, writes: int) -> list[float]:
    listeners = list(workers.workers().values())
    times = []
    async with httpx.AsyncClient(timeout=5) as client:
        for n in range(writes):
            times.append(await one_write(client, workers.url, listeners, f"v{n}") * 1000)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--writes", type=int, default=100)
    args = p.parse_args()
    env = {"GOSSIP_INTERVAL": "0.2"}
    with UvicornWorkers("examples.pid_app:app", args.workers, env=env, cwd=ROOT) as workers:
        times = anyio.run(measure, workers, args.writes)
    print(f"# uvicorn --workers {args.workers}, interval 0.2 s, eager push on; "
          f"{platform.node()} {time.strftime('%Y-%m-%d')}")
    print(
        "# from the start of POST /set on the shared port until every worker's listener has it "
        "(watched while the POST is answered)"
    )
    print(f"writes {len(times)}: median {statistics.median(times):.1f} ms, "
          f"p99 {percentile(times, 99):.1f} ms, max {max(times):.1f} ms")


if __name__ == "__main__":
    main()
