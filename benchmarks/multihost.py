"""Part 6, many hosts: N=50 real nodes over 5 network-namespace hosts (10 per host), with
the member views of earlier versions (every member in every message) and sampled views
(the default, and one smaller than N) side by side in one run: bytes per gossip message,
propagation of a write to every node, idle CPU per node, and false dead marks (no node
fails in this run)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.netns_cluster import Node, cluster, dead_marks, members_seen, sent_by_kind, wait_joined
from benchmarks.report import Section, ms
from benchmarks.system import cpu_seconds
from chaos.hosts import Hosts, available
from gossip.config import Config
from node.tools.propagation import percentile

# The configurations compared, by the node options that make them.
VIEWS: dict[str, list[str]] = {
    "whole views (before)": ["--view-size", str(Config.max_members_per_message)],
    "sampled views (default)": [],
    # Smaller than N here, as the default is at N > 48: the sampling and its detector at work.
    "sampled views of 16": ["--view-size", "16"],
}
POLL = 0.02  # seconds between one reader's polls while a write spreads
TIMEOUT = 30.0


async def _spread(client: httpx.AsyncClient, nodes: Sequence[Node], writer: Node) -> float:
    """Seconds from the start of a write on `writer` until every node reads it."""
    key, value = f"mh-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    started = time.perf_counter()
    r = await client.post(writer.url + "/set", json={"key": key, "value": value})
    r.raise_for_status()

    async def watch(node: Node) -> None:
        while time.perf_counter() - started < TIMEOUT:
            with contextlib.suppress(httpx.HTTPError):
                got = await client.get(node.url + "/get", params={"key": key})
                if got.status_code == 200 and got.json()["value"] == value:
                    return
            await asyncio.sleep(POLL)
        raise TimeoutError(f"{node.name} did not read {key} within {TIMEOUT:.0f} s")

    await asyncio.gather(*(watch(n) for n in nodes))
    return time.perf_counter() - started


async def _traffic(client: httpx.AsyncClient, nodes: Sequence[Node]) -> tuple[int, int]:
    """Exchange and reply messages sent by all nodes so far, and their body bytes."""
    messages, size = await sent_by_kind(client, nodes)
    return (sum(n for kind, n in messages.items() if kind != "rumor"),
            sum(n for kind, n in size.items() if kind != "rumor"))


@dataclass
class Result:
    joined_s: float
    spread_s: list[float]
    cpu: list[float]  # % of a core per node over the idle window
    bytes_per_message: float
    messages_per_node_s: float
    dead_marks: int


async def _measure(nodes: Sequence[Node], writes: int, idle_s: float) -> Result:
    limits = httpx.Limits(max_connections=2 * len(nodes))
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        joined = await wait_joined(client, nodes, timeout=180)
        spread = [await _spread(client, nodes, nodes[(7 * i) % len(nodes)]) for i in range(writes)]
        await asyncio.sleep(3)  # the writes' exchanges settle
        before, t0 = await _traffic(client, nodes), time.monotonic()
        cpu0 = [cpu_seconds(n.proc.pid) for n in nodes]
        await asyncio.sleep(idle_s)
        cpu1, t1 = [cpu_seconds(n.proc.pid) for n in nodes], time.monotonic()
        after = await _traffic(client, nodes)
        dead = (await members_seen(client, nodes))[1]
    sent = after[0] - before[0]
    return Result(
        joined, spread, [(b - a) / (t1 - t0) * 100 for a, b in zip(cpu0, cpu1, strict=True)],
        (after[1] - before[1]) / max(1, sent), sent / len(nodes) / (t1 - t0), dead,
    )


def run(quick: bool, command: str, out_dir: Path) -> Section:
    count, per_host = (3, 4) if quick else (5, 10)
    writes, idle_s = (3, 6.0) if quick else (20, 30.0)
    if (reason := available()) is not None:
        raise RuntimeError(f"the many-hosts benchmark needs network namespaces: {reason}")
    results: dict[str, Result] = {}
    with Hosts(count) as hosts:
        for number, (label, options) in enumerate(VIEWS.items()):
            logs = f"multihost-views{number}"
            with cluster(hosts, per_host, options, logs) as nodes:
                print(f"  {label}: {len(nodes)} nodes on {count} hosts", flush=True)
                results[label] = asyncio.run(_measure(nodes, writes, idle_s))
                r = results[label]
                print(f"  {label}: {r.bytes_per_message:,.0f} B/message, spread median "
                      f"{ms(1000 * statistics.median(r.spread_s))} ms, "
                      f"CPU {statistics.mean(r.cpu):.2f}%", flush=True)
            results[label].dead_marks = max(results[label].dead_marks, dead_marks(logs, len(nodes)).total())
    return _section(results, count, per_host, writes, idle_s, command)


def _section(results: dict[str, Result], count: int, per_host: int, writes: int, idle_s: float,
             command: str) -> Section:
    section = Section(
        "6. Many hosts", command,
        f"N={count * per_host} nodes, {per_host} per host on {count} network-namespace hosts joined by one "
        f"bridge (real uvicorn processes, real HTTP, signed gossip), the default interval "
        f"({Config.gossip_interval} s) and fanout; spread = from the start of a write on one node until "
        f"every node reads it ({writes} writes, polled every {POLL * 1000:.0f} ms); CPU and bytes over "
        f"{idle_s:.0f} s without writes; bytes = bodies of exchanges and replies sent.",
        ["views", "joined in", "bytes per message", "messages/s per node", "spread median ms",
         "spread p90 ms", "spread max ms", "idle CPU % per node", "dead marks"],
    )
    for label, r in results.items():
        spread = (statistics.median(r.spread_s), percentile(r.spread_s, 90), max(r.spread_s))
        section.rows.append([
            label, f"{r.joined_s:.0f} s", f"{r.bytes_per_message:,.0f}", f"{r.messages_per_node_s:.1f}",
            *(ms(1000 * x) for x in spread),
            f"{statistics.mean(r.cpu):.2f}", str(r.dead_marks),
        ])
    marks = ", ".join(f"{r.dead_marks} ({label})" for label, r in results.items())
    section.goals.append((
        f"0 dead marks with no node failing: {marks}",
        all(r.dead_marks == 0 for r in results.values()),
    ))
    return section


if __name__ == "__main__":
    print(run("--quick" in sys.argv, " ".join(sys.argv), Path("/tmp")).markdown())
