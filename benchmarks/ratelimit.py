"""Part 6, rate-limit overshoot: an app under `uvicorn --workers 4` limiting one client key
to L = 500 requests per 10 s window, offered a steady 1,000 requests/s through the shared
port for 5 windows, with five limiters side by side in one run: ours (node.RateLimit over
the shared state), slowapi on our `limits` storage (`gossip://`, a node in each worker),
slowapi with its default in-memory storage (each worker counts alone), slowapi on the
`limits` Redis storage (exact: one count in a redis-server), and none. Per
window: admitted / L and the overshoot; per limiter: the latency it adds to a request.
Then ours again across two "hosts" (two uvicorn commands joined by a seed), and at 10
times the offered rate. Beside each of ours, the simulator's prediction (gossip-sim
ratelimit) from the push round trip the workers measured."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.rawhttp import Connection
from benchmarks.redis_server import RedisServer
from benchmarks.report import Section
from benchmarks.system import HOST, Process, running, wait_http
from gossip.config import Config
from node.tools.local_cluster import free_ports
from node.tools.testing import UvicornWorkers, live_members
from simulations.ratelimit import RateLimitRun, run_ratelimit

LIMIT, PERIOD = 500, 10.0
OFFERED = 1000.0  # requests per second
CONNECTIONS = 32  # kept alive, spread over the workers by the kernel
APP = "benchmarks.ratelimit_app:app"
GOAL_RATIO = 1.05  # admitted / L, in every window
GOAL_LATENCY_SHARE = 0.1  # our added latency, as a share of the Redis limiter's
GOAL_SLOWAPI_ADDED_MS = 1.5  # slowapi on gossip://: latency added, at most
GOAL_SERVED = 0.99  # slowapi on gossip://: the share of the offered rate answered, at least


@dataclass
class Run:
    name: str
    windows: list[int]  # admitted per window
    offered: float  # requests per second actually sent
    latencies_ms: list[float]
    push_rtt_ms: float | None = None  # ours: the workers' mean push round trip

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms)


async def offer(ports: list[int], rate: float, windows: int) -> tuple[list[int], float, list[float]]:
    """Requests at `rate` per second (as fast as they go, if slower), starting at a window
    boundary of the wall clock, for `windows` windows: admitted per window, the rate
    achieved, every request's latency."""
    start = (time.time() // PERIOD + 1) * PERIOD
    await asyncio.sleep(start - time.time())
    total, end = round(rate * PERIOD * windows), start + PERIOD * windows
    admitted, latencies, nxt = [0] * windows, [], 0
    loop = asyncio.get_running_loop()
    offset = time.time() - loop.time()  # loop time -> wall time

    async def sender(port: int) -> None:
        nonlocal nxt
        connection = Connection(port)
        try:
            while nxt < total:
                i, nxt = nxt, nxt + 1
                due = start + i / rate
                if (wait := due - (loop.time() + offset)) > 0:
                    await asyncio.sleep(wait)
                sent = loop.time() + offset
                if sent >= end:  # slower than asked: what is left would land past the windows
                    nxt = total
                    break
                status, _ = await connection.request("GET", "/limited")
                latencies.append((loop.time() + offset - sent) * 1000)
                window = int((sent - start) // PERIOD)
                if status == 200 and 0 <= window < windows:
                    admitted[window] += 1
                elif status not in (200, 429):
                    raise RuntimeError(f"unexpected answer {status}")
        finally:
            connection.close()

    await asyncio.gather(*(sender(ports[i % len(ports)]) for i in range(CONNECTIONS)))
    return admitted, len(latencies) / (PERIOD * windows), latencies


def _env(limiter: str, redis_url: str = "") -> dict[str, str]:
    return {"BENCH_LIMITER": limiter, "BENCH_RATE": f"{LIMIT}/{PERIOD:g} seconds", "BENCH_REDIS": redis_url}


@contextlib.contextmanager
def plain_workers(limiter: str, redis_url: str = "") -> Iterator[int]:
    """The app under `uvicorn --workers 4` with a baseline limiter: its port."""
    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "uvicorn", APP, "--host", HOST, "--port", str(port), "--workers", "4",
            "--log-level", "warning", "--no-access-log"]
    proc = Process(f"ratelimit-{limiter}", argv, _env(limiter, redis_url))
    with running(proc):
        wait_http(f"http://{HOST}:{port}/ready", proc)
        yield port


@contextlib.contextmanager
def gossip_hosts(hosts: int, workers: int, limiter: str = "ours") -> Iterator[list[UvicornWorkers]]:
    """`hosts` uvicorn commands of `workers` workers running `limiter` on their nodes, one
    cluster: each host has a host directory of its own, and the later ones a seed in the first."""
    cluster = f"ratelimit-{uuid.uuid4().hex[:8]}"
    started: list[UvicornWorkers] = []
    try:
        for h in range(hosts):
            # (the library's default interval, as users run it; the tests' workers use 0.1 s)
            env = {**_env(limiter), "GOSSIP_CLUSTER_ID": cluster,
                   "GOSSIP_INTERVAL": str(Config.gossip_interval)}
            if started:
                env["GOSSIP_SEEDS"] = ",".join(started[0].workers().values())
            directory = Path(tempfile.mkdtemp(prefix=f"gossip-bench-host{h}-"))
            host = UvicornWorkers(APP, workers=workers, env=env, discovery_dir=directory)
            started.append(host.start(timeout=60))
        _wait_members([w for host in started for w in host.workers().values()], hosts * workers)
        yield started
    finally:
        for host in started:
            host.stop()


def _wait_members(addresses: list[str], count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while True:
            if all(live_members(client, a) >= count for a in addresses):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {count} workers did not all meet")
            time.sleep(0.1)


def _push_rtt_ms(addresses: list[str]) -> float | None:
    with httpx.Client(timeout=2) as client:
        stats = [client.get(a + "/stats").json() for a in addresses]
    pushes = sum(s["pushes_sent"] for s in stats)
    return sum(s["push_seconds"] for s in stats) / pushes * 1000 if pushes else None


def run_ours(name: str, hosts: int, workers: int, rate: float, windows: int, limiter: str = "ours") -> Run:
    with gossip_hosts(hosts, workers, limiter) as started:
        ports = [host.port for host in started]
        admitted, achieved, latencies = asyncio.run(offer(ports, rate, windows))
        rtt = _push_rtt_ms([a for host in started for a in host.workers().values()])
    return Run(name, admitted, achieved, latencies, rtt)


def run_baseline(limiter: str, windows: int, redis_url: str = "") -> Run:
    with plain_workers(limiter, redis_url) as port:
        admitted, achieved, latencies = asyncio.run(offer([port], OFFERED, windows))
    return Run(limiter, admitted, achieved, latencies)


def predicted(run: Run, nodes: int) -> list[float]:
    """The simulator's admitted / L per window for the same load, from the push round
    trip the workers measured (one-way latency: half of it, half base and half tail)."""
    one_way = (run.push_rtt_ms or 2.0) / 2 / 1000
    sim = RateLimitRun(nodes=nodes, offered=run.offered, limit=LIMIT, period=PERIOD,
                       windows=len(run.windows), latency=one_way / 2, latency_tail=one_way / 2)
    return [w.ratio for w in run_ratelimit(sim, seed=1)]


def run(quick: bool, command: str, out_dir: Path) -> Section:
    windows = 1 if quick else 5  # (each run waits for a window's start: the quick one runs one)
    redis = RedisServer()
    try:
        none = run_baseline("none", windows)
        ours = run_ours("ours, 1 host x 4 workers", 1, 4, OFFERED, windows)
        theirs = run_ours("slowapi on gossip://, 1 host x 4 workers", 1, 4, OFFERED, windows,
                          limiter="slowapi-gossip")
        memory = run_baseline("slowapi-memory", windows)
        exact = run_baseline("slowapi-redis", windows, redis.url)
    finally:
        redis.stop()
    two_hosts = run_ours("ours, 2 hosts x 2 workers", 2, 2, OFFERED, windows)
    # (not in the quick run: it needs the time of two more windows)
    tenfold = None if quick else run_ours("ours, 10x offered", 1, 4, 10 * OFFERED, 3)
    section = Section(
        "Rate-limit overshoot", command,
        f"L = {LIMIT} per {PERIOD:g} s for one client key, {OFFERED:g} requests/s offered over "
        f"{CONNECTIONS} kept-alive connections through the shared port, {windows} windows, "
        "uvicorn --workers 4 (two hosts: 2 + 2 workers joined by a seed)",
        ["limiter", "offered/s", "admitted / L per window", "worst overshoot",
         "mean latency ms", "added ms", "predicted admitted / L (sim)"],
    )
    base = none.mean_ms
    rows = ((ours, 4), (two_hosts, 4), (tenfold, 4), (theirs, 0), (memory, 0), (exact, 0), (none, 0))
    for r, sim_nodes in rows:
        if r is None:
            continue
        ratios = [a / LIMIT for a in r.windows]
        over = max(0, max(r.windows) - LIMIT)
        pred = " ".join(f"{p:.3f}" for p in predicted(r, sim_nodes)) if sim_nodes else ""
        section.rows.append([r.name, f"{r.offered:.0f}", " ".join(f"{x:.3f}" for x in ratios), str(over),
                             f"{r.mean_ms:.2f}", f"{r.mean_ms - base:+.2f}", pred])
    worst = max(a / LIMIT for a in ours.windows + two_hosts.windows)
    ours_added, redis_added = ours.mean_ms - base, exact.mean_ms - base
    theirs_worst, theirs_added = max(a / LIMIT for a in theirs.windows), theirs.mean_ms - base
    section.goals = [
        (f"ours: admitted / L <= {GOAL_RATIO} in every window (1 and 2 hosts): worst {worst:.3f}",
         worst <= GOAL_RATIO),
        (f"ours adds at most a tenth of the Redis limiter's latency: {ours_added:+.2f} ms vs "
         f"{redis_added:+.2f} ms", redis_added > 0 and ours_added <= GOAL_LATENCY_SHARE * redis_added),
        (f"slowapi on gossip://: admitted / L <= {GOAL_RATIO} in every window: worst {theirs_worst:.3f}",
         theirs_worst <= GOAL_RATIO),
        (f"slowapi on gossip://: adds at most {GOAL_SLOWAPI_ADDED_MS} ms: {theirs_added:+.2f} ms "
         f"(slowapi on Redis {redis_added:+.2f} ms)", theirs_added <= GOAL_SLOWAPI_ADDED_MS),
        (f"slowapi on gossip://: every offered request answered: {theirs.offered:.0f} of {OFFERED:.0f}/s",
         theirs.offered >= GOAL_SERVED * OFFERED),
    ]
    section.notes.append(
        f"Push round trip the workers measured: {ours.push_rtt_ms or 0:.1f} ms (one host), "
        f"{two_hosts.push_rtt_ms or 0:.1f} ms (two hosts)"
        f"{'' if tenfold is None else f', {tenfold.push_rtt_ms or 0:.1f} ms (10x)'}. "
        "The overshoot is what other workers admit before a count reaches them; the sliding "
        "estimate admits a window's requests evenly after the first, so the first window, "
        "which meets the whole burst, carries most of it. Added latency is the mean over every "
        "request, admitted or refused, minus the mean without a limiter."
    )
    return section
