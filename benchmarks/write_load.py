"""Part 4, write load: N processes, one wrk per process POSTing /set with keys of its
own (nothing is ever overwritten), for three setups side by side in one run: N unshared
bare FastAPI apps storing into a dict (the ceiling: nothing is shared), N FastAPI apps
sharing one redis-server (the usual alternative), and an N-node gossip cluster. During
the gossip run a sampler writes probe keys and times how long every node takes to
return them; afterwards, the time until every node holds the same state, and how many
acknowledged writes some node lacks."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib import pyplot as plt

from benchmarks.rawhttp import Connection
from benchmarks.redis_server import RedisServer
from benchmarks.report import Section, ms
from benchmarks.system import HOST, Process, running, start_cluster, uvicorn_app, wait_http
from node.tools.local_cluster import free_ports
from node.tools.propagation import percentile

SCRIPT = Path(__file__).with_name("set.lua")
CONNECTIONS = 4  # per wrk, one wrk per process
PROBE_EVERY = 0.2  # seconds between probe writes during the gossip run
POLL = 0.005


@dataclass
class Load:
    seconds: float
    accepted: int  # 200 answers
    answered: int  # every answer, errors included
    errors: int  # socket errors and non-2xx answers

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


@dataclass
class GossipRun:
    load: Load
    lags_ms: list[float] = field(default_factory=list)  # probe write acked -> every node returns it
    probes_acked: int = 0
    settle_s: float = float("nan")  # load ended -> every node the same /digest
    lost: int = 0  # acknowledged writes some node lacks


def _wrk(port: int, seconds: float, prefix: str) -> subprocess.Popen[str]:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(SCRIPT),
            f"http://{HOST}:{port}", "--", prefix]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def load(ports: list[int], seconds: float, tag: str) -> Load:
    """One wrk per port at once, each with keys of its own; bounded by `seconds`."""
    procs = [_wrk(port, seconds, f"{tag}-{i}") for i, port in enumerate(ports)]
    accepted = answered = errors = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0 or "ACCEPTED" not in out:
            raise RuntimeError(f"wrk failed:\n{out}")
        accepted += int(re.search(r"ACCEPTED (\d+)", out).group(1))  # type: ignore[union-attr]
        answered += int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        if non2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
            errors += int(non2xx.group(1))
    return Load(seconds, accepted, answered, errors)


async def _probe(ports: list[int], run: GossipRun, stop: float, seed: int) -> None:
    """Write a fresh key through a random node, poll every node until all return it."""
    rng = random.Random(seed)
    writers = {p: Connection(p) for p in ports}
    readers = [Connection(p) for p in ports]
    n = 0
    try:
        while time.monotonic() < stop:
            n += 1
            key = f"probe-{seed}-{n}"
            status, _ = await writers[rng.choice(ports)].post_json("/set", {"key": key, "value": n})
            acked = time.monotonic()
            if status != 200:
                continue
            run.probes_acked += 1

            async def visible(conn: Connection, key: str = key) -> None:
                while (await conn.get_json(f"/get?key={key}"))[0] != 200:
                    await asyncio.sleep(POLL)

            await asyncio.wait_for(asyncio.gather(*(visible(c) for c in readers)), 60)
            run.lags_ms.append((time.monotonic() - acked) * 1000)
            await asyncio.sleep(PROBE_EVERY)
    finally:
        for conn in [*writers.values(), *readers]:
            conn.close()


async def _settle(ports: list[int], timeout: float = 120.0) -> tuple[float, list[int]]:
    """Seconds until every node reports the same /digest, and the key count of each."""
    started = time.monotonic()
    conns = [Connection(p) for p in ports]
    try:
        while True:
            answers = [(await c.get_json("/digest"))[1] for c in conns]
            if len({a["digest"] for a in answers}) == 1 or time.monotonic() - started > timeout:
                return time.monotonic() - started, [a["keys"] for a in answers]
            await asyncio.sleep(0.02)
    finally:
        for c in conns:
            c.close()


def gossip_run(nodes: int, seconds: float) -> GossipRun:
    cluster = start_cluster(nodes)
    try:
        ports = cluster.ports
        stop = time.monotonic() + seconds
        run = GossipRun(Load(seconds, 0, 0, 0))

        async def both() -> None:
            probe = asyncio.create_task(_probe(ports, run, stop, seed=nodes))
            run.load = await asyncio.to_thread(load, ports, seconds, f"gossip{nodes}")
            await probe

        asyncio.run(both())
        run.settle_s, counts = asyncio.run(_settle(ports))
        # Keys are never reused, so each node must hold one key per acknowledged write.
        run.lost = max(0, run.load.accepted + run.probes_acked - min(counts))
    finally:
        cluster.stop()
    return run


def _apps(name: str, app: str, count: int, env: dict[str, str] | None = None
          ) -> tuple[list[int], list[Process]]:
    ports = free_ports(count)
    procs = [uvicorn_app(f"{name}-{i}", app, port, env) for i, port in enumerate(ports)]
    for port, proc in zip(ports, procs, strict=True):
        wait_http(f"http://{HOST}:{port}/health", proc)
    return ports, procs


def baseline_runs(nodes: int, seconds: float) -> tuple[Load, Load]:
    """N unshared bare apps, then N apps sharing one redis-server."""
    ports, procs = _apps("bare", "benchmarks.apps:bare", nodes)
    with running(*procs):
        bare = load(ports, seconds, f"bare{nodes}")
    redis = RedisServer()
    with running(redis.process):
        ports, procs = _apps("redis", "benchmarks.apps:redis_backed", nodes, {"REDIS_URL": redis.url})
        with running(*procs):
            shared = load(ports, seconds, f"redis{nodes}")
    return bare, shared


def run(quick: bool, command: str, out_dir: Path) -> Section:
    sizes, seconds = ((10,), 6.0) if quick else ((5, 10, 20), 10.0)  # (the goals are N=10's)
    rows: dict[int, tuple[Load, Load, GossipRun]] = {}
    for n in sizes:
        bare, redis = baseline_runs(n, seconds)
        gossip = gossip_run(n, seconds)
        rows[n] = (bare, redis, gossip)
        print(f"  writes N={n}: bare {bare.rate:.0f}/s, redis {redis.rate:.0f}/s, gossip "
              f"{gossip.load.rate:.0f}/s", flush=True)
    return _section(rows, seconds, command, out_dir)


def _section(rows: dict[int, tuple[Load, Load, GossipRun]], seconds: float, command: str,
             out_dir: Path) -> Section:
    section = Section(
        "4. Write load", command,
        f"For each N: N processes, each loaded by a wrk of its own (1 thread, {CONNECTIONS} "
        f"connections, {seconds:.0f} s) POSTing /set with keys nobody else writes, on three setups "
        "one after the other: N bare FastAPI apps each storing into its own dict (the ceiling: "
        "nothing is shared), N FastAPI apps sharing one redis-server (redis-py asyncio), and an "
        "N-node gossip cluster (interval 0.2 s, fanout 3, eager push on). During the gossip run a "
        f"probe writes a fresh key through a random node every {PROBE_EVERY} s and polls every "
        f"node every {POLL * 1000:.0f} ms until all return it (the lag). After it, the time until "
        "every node reports the same /digest, and the acknowledged writes a node lacks (keys are "
        "never reused, so each node must hold one key per 200 answer). Every server runs on "
        "uvicorn with uvloop and httptools.",
        ["N", "bare (ceiling) writes/s", "FastAPI+Redis writes/s", "gossip writes/s",
         "vs Redis", "vs ceiling", "probe lag p50 ms", "p99 ms", "same state after s",
         "acked lost", "errors (bare/Redis/gossip)"],
    )
    for n, (bare, redis, gossip) in rows.items():
        lags = gossip.lags_ms or [float("nan")]
        section.rows.append([
            str(n), f"{bare.rate:.0f}", f"{redis.rate:.0f}", f"{gossip.load.rate:.0f}",
            f"{gossip.load.rate / redis.rate:.2f}x", f"{gossip.load.rate / bare.rate:.2f}x",
            ms(statistics.median(lags)), ms(percentile(lags, 99)), f"{gossip.settle_s:.2f}",
            str(gossip.lost), f"{bare.errors}/{redis.errors}/{gossip.load.errors}",
        ])
    if 10 in rows:
        bare, redis, gossip = rows[10]
        p99 = percentile(gossip.lags_ms, 99) if gossip.lags_ms else float("inf")
        section.goals += [
            (f"N=10 writes/s >= 1.0x FastAPI+Redis: {gossip.load.rate / redis.rate:.2f}x",
             gossip.load.rate >= redis.rate),
            (f"N=10 writes/s >= 0.6x the unshared ceiling: {gossip.load.rate / bare.rate:.2f}x",
             gossip.load.rate >= 0.6 * bare.rate),
            (f"N=10 probe lag during the load p99 <= 250 ms: {p99:.0f} ms", p99 <= 250),
            (f"N=10 same state <= 0.5 s after the load: {gossip.settle_s:.2f} s", gossip.settle_s <= 0.5),
        ]
    lost = sum(g.lost for _, _, g in rows.values())
    section.goals.append((f"acknowledged writes lost, every N: {lost}", lost == 0))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sizes = list(rows)
    lines = {
        "bare FastAPI, unshared (ceiling)": ([b.rate for b, _, _ in rows.values()], "grey"),
        "FastAPI + Redis": ([r.rate for _, r, _ in rows.values()], "tab:red"),
        "gossip cluster": ([g.load.rate for _, _, g in rows.values()], "tab:blue"),
    }
    for label, (rates, color) in lines.items():
        ax.plot(sizes, rates, marker="o", label=label, color=color)
    ax.set_xlabel("processes (N)")
    ax.set_ylabel("accepted writes/s")
    ax.set_ylim(bottom=0)
    ax.legend()
    section.save_plot(fig, out_dir, "write_load.png")
    return section


if __name__ == "__main__":
    print(run("--quick" in sys.argv, " ".join(sys.argv), Path("/tmp")).markdown())
