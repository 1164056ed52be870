"""Part 2, propagation: from the start of a write on one node until every node reads
the new value, for N nodes with eager push on and off, against Redis (write, then N
clients read) and, with eager push on, against a fleet of N FastAPI apps on one
redis-server (a write through one app, then every app polled the same way), one Redis write
and one fleet write after each cluster write."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from matplotlib import pyplot as plt

from benchmarks.rawhttp import Connection
from benchmarks.redis_server import RedisServer
from benchmarks.report import Section, ms
from benchmarks.system import running, start_cluster
from benchmarks.write_load import _apps
from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile

FLEET_APP = "benchmarks.apps:redis_backed"
POLL = 0.005  # seconds between one reader's polls, for the nodes and for Redis alike
TIMEOUT = 10.0


async def _gossip_write(conns: list[Connection], writer: int, key: str) -> float | None:
    value = uuid.uuid4().hex
    started = time.perf_counter()
    status, _ = await conns[writer].post_json("/set", {"key": key, "value": value})
    assert status == 200, status

    async def watch(conn: Connection) -> bool:
        while time.perf_counter() - started < TIMEOUT:
            status, body = await conn.get_json(f"/get?key={key}")
            if status == 200 and body["value"] == value:
                return True
            await asyncio.sleep(POLL)
        return False

    seen = await asyncio.gather(*(watch(c) for c in conns))
    return time.perf_counter() - started if all(seen) else None


async def _redis_write(clients: list[aioredis.Redis], key: str) -> float:
    value = uuid.uuid4().hex
    started = time.perf_counter()
    await clients[0].set(key, value)

    async def watch(client: aioredis.Redis) -> None:
        while await client.get(key) != value:
            await asyncio.sleep(POLL)

    await asyncio.wait_for(asyncio.gather(*(watch(c) for c in clients)), TIMEOUT)
    return time.perf_counter() - started


@dataclass
class Row:
    gossip: list[float] = field(default_factory=list)  # ms until every node returns the write
    redis: list[float] = field(default_factory=list)  # the same for Redis, read by N clients
    fleet: list[float] = field(default_factory=list)  # and for N FastAPI apps on Redis (eager rows)
    missed: int = 0


async def _measure(cluster: LocalCluster, redis_url: str, writes: int, seed: int, fleet_ports: list[int]
                   ) -> Row:
    rng = random.Random(seed)
    conns = [Connection(port) for port in cluster.ports]
    apps = [Connection(port) for port in fleet_ports]
    # One connection pool per reader, so the N Redis readers are N clients.
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in cluster.ports]
    row = Row()
    try:
        for c in conns:
            await c.get_json("/health")
        for n in range(writes):
            t = await _gossip_write(conns, rng.randrange(len(conns)), f"prop-{n % 20}")
            if t is None:
                row.missed += 1
            else:
                row.gossip.append(t * 1000)
            row.redis.append(await _redis_write(clients, f"prop-{n % 20}") * 1000)
            if apps and (t := await _gossip_write(apps, rng.randrange(len(apps)), f"fleet-{n % 20}")):
                row.fleet.append(t * 1000)
            await asyncio.sleep(0.02)
    finally:
        for c in [*conns, *apps]:
            c.close()
        for client in clients:
            await client.aclose()
    return row


def run(quick: bool, command: str, out_dir: Path) -> Section:
    writes = 20 if quick else 100
    sizes = (5, 10) if quick else (5, 10, 20, 50)
    results: dict[tuple[int, bool], Row] = {}
    redis = RedisServer()
    try:
        for nodes in sizes:
            for eager in (True, False) if nodes <= 20 else (True,):
                results[nodes, eager] = _row(nodes, eager, redis.url, writes)
                g = results[nodes, eager].gossip
                print(f"  propagation N={nodes} eager={eager}: median "
                      f"{statistics.median(g):.1f} ms", flush=True)
    finally:
        redis.stop()
    return _section(results, quick, writes, command, out_dir)


def _row(nodes: int, eager: bool, redis_url: str, writes: int) -> Row:
    """One row: the cluster and, with eager push on (up to N=20), the FastAPI+Redis fleet beside it."""
    env = {"REDIS_URL": redis_url}
    fleet_ports, fleet = _apps("fleet", FLEET_APP, nodes, env) if eager and nodes <= 20 else ([], [])
    with running(*fleet):
        cluster = start_cluster(nodes, eager_push=eager)
        try:
            return asyncio.run(_measure(cluster, redis_url, writes, nodes, fleet_ports))
        finally:
            cluster.stop()


def _section(results: dict[tuple[int, bool], Row], quick: bool, writes: int, command: str, out_dir: Path
             ) -> Section:
    section = Section(
        "2. Propagation", command,
        f"{writes} writes per row, each through a random node to one of 20 keys, a fresh value; "
        f"time from the start of POST /set until GET /get on every node returns the value, each "
        f"node polled every {POLL * 1000:.0f} ms over keep-alive connections (so +-{POLL * 1000:.0f}"
        f" ms resolution); gossip interval 0.2 s (the launcher's default), fanout 3; Redis row: "
        f"SET through one client, then N clients (own connections) poll GET the same way; "
        f"FastAPI+Redis fleet (eager rows up to N=20): N apps on one redis-server, POST /set "
        f"through a random one, then GET /get polled on every app as the nodes are; one Redis "
        f"write and one fleet write after each cluster write (interleaved).",
        ["N", "eager push", "writes", "median ms", "p99 ms", "max ms", "not seen in 10 s",
         "Redis median ms", "Redis p99 ms", "FastAPI+Redis fleet median ms", "fleet p99 ms"],
    )
    for (nodes, eager), row in results.items():
        g, r, f = row.gossip, row.redis, row.fleet
        section.rows.append([str(nodes), "on" if eager else "off", str(len(g)),
                             ms(statistics.median(g)), ms(percentile(g, 99)), ms(max(g)),
                             str(row.missed), ms(statistics.median(r)), ms(percentile(r, 99)),
                             ms(statistics.median(f)) if f else "", ms(percentile(f, 99)) if f else ""])
    ten = results[10, True]
    med, p99, fleet = statistics.median(ten.gossip), percentile(ten.gossip, 99), statistics.median(ten.fleet)
    section.goals += [
        (f"N=10, eager push: median <= 10 ms ({med:.1f} ms)", med <= 10),
        (f"N=10, eager push: p99 <= 30 ms ({p99:.1f} ms)", p99 <= 30),
        (f"N=10, eager push: median <= 1.5x the FastAPI+Redis fleet's ({med:.1f} vs {fleet:.1f} ms: "
         f"{med / fleet:.2f}x)", med <= 1.5 * fleet),
    ]
    if (20, True) in results:
        med20 = statistics.median(results[20, True].gossip)
        section.goals.append((f"N=20, eager push: median <= 25 ms ({med20:.1f} ms)", med20 <= 25))
    if quick:
        section.notes.append("Quick mode: N = 5 and 10 only, 20 writes per row.")
    else:
        section.notes.append("N=50: eager push on only (50 processes fit in memory here).")
    fig, ax = plt.subplots(figsize=(8, 4))
    for (nodes, eager), row in results.items():
        xs = sorted(row.gossip)
        ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))],
                label=f"N={nodes}, eager {'on' if eager else 'off'}",
                linestyle="-" if eager else "--")
    r = sorted(x for row in results.values() for x in row.redis)
    ax.plot(r, [(i + 1) / len(r) for i in range(len(r))], color="black", label="Redis (all N)")
    ax.set_xscale("log")
    ax.set_xlabel("ms from start of write until every node reads it (log)")
    ax.set_ylabel("fraction of writes")
    ax.legend(fontsize=8)
    section.save_plot(fig, out_dir, "propagation.png")
    return section


if __name__ == "__main__":
    print(run(True, " ".join(sys.argv), Path("/tmp")).markdown())
