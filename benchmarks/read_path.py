"""Part 1, the read path: GET /get?key=K on one node of a gossiping cluster against a
bare FastAPI app (dict) and the same app reading Redis, runs interleaved."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from matplotlib import pyplot as plt

from benchmarks import apps
from benchmarks.asgi_cost import Target, per_request_us
from benchmarks.redis_server import RedisServer
from benchmarks.report import Section, ms
from benchmarks.system import HOST, running, start_cluster, uvicorn_app, wait_http
from benchmarks.wrk import WrkResult, run_wrk
from node.tools.local_cluster import free_ports

KEY = "bench-key"
VALUE = "v" * 100
NODES = 5
CONNECTIONS = 32


def run(quick: bool, command: str, out_dir: Path) -> Section:
    seconds, rounds = (3, 2) if quick else (10, 5)
    cluster = start_cluster(NODES)
    redis = RedisServer()
    bare_port, redis_port, mounted_port = free_ports(3)
    bare = uvicorn_app("bare", "benchmarks.apps:bare", bare_port)
    redis_app = uvicorn_app("redis-app", "benchmarks.apps:redis_backed", redis_port,
                            {"REDIS_URL": redis.url})
    mounted = uvicorn_app("node-async", "benchmarks.apps:node_async_get", mounted_port, {
        "GOSSIP_PORT": str(mounted_port), "GOSSIP_NODE_ID": "async-reader",
        "GOSSIP_SEEDS": cluster.urls[0], "GOSSIP_CLUSTER_ID": cluster.cluster_id,
        "GOSSIP_KEY": cluster.key or "",
    }, factory=True)
    try:
        with running(bare, redis_app, mounted, redis.process):
            for port, proc in ((bare_port, bare), (redis_port, redis_app), (mounted_port, mounted)):
                wait_http(f"http://{HOST}:{port}/health", proc)
            for base in (f"http://{HOST}:{bare_port}", f"http://{HOST}:{redis_port}",
                         cluster.urls[0]):
                httpx.post(base + "/set", json={"key": KEY, "value": VALUE}).raise_for_status()
            targets = {
                "bare FastAPI + dict": f"http://{HOST}:{bare_port}/get?key={KEY}",
                "gossip node": f"{cluster.urls[-1]}/get?key={KEY}",
                "FastAPI + Redis (redis-py asyncio)": f"http://{HOST}:{redis_port}/get?key={KEY}",
                "user route reading shared state": f"http://{HOST}:{mounted_port}/fast/get?key={KEY}",
            }
            for url in targets.values():  # every target holds the value, and warms up
                wait_http(url, timeout=30)
                run_wrk(url, 1, CONNECTIONS)
            results: dict[str, list[WrkResult]] = {name: [] for name in targets}
            names = list(targets)
            for r in range(rounds):  # rotate the order so no target always goes first
                for name in names[r % len(names):] + names[: r % len(names)]:
                    results[name].append(run_wrk(targets[name], seconds, CONNECTIONS))
                    print(f"  read {name}: {results[name][-1].requests_per_s:.0f} req/s",
                          flush=True)
    finally:
        cluster.stop()
    return _section(results, quick, seconds, rounds, command, out_dir)


def _section(results: dict[str, list[WrkResult]], quick: bool, seconds: int, rounds: int,
             command: str, out_dir: Path) -> Section:
    rps = {n: statistics.median(r.requests_per_s for r in rs) for n, rs in results.items()}
    p50 = {n: statistics.median(r.p50_ms for r in rs) for n, rs in results.items()}
    p99 = {n: statistics.median(r.p99_ms for r in rs) for n, rs in results.items()}
    bare, node, redis = (rps[n] for n in ("bare FastAPI + dict", "gossip node",
                                          "FastAPI + Redis (redis-py asyncio)"))
    user = rps["user route reading shared state"]
    section = Section(
        "1. Read path", command,
        f"wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency, {rounds} interleaved rounds (order "
        f"rotated each round), medians over rounds; every server one uvicorn worker, default loop "
        f"and HTTP implementation, log level warning, no access log; the gossip node is one of "
        f"{NODES} gossiping at 0.2 s; value a {len(VALUE)}-byte string; wrk shares the 2 cores.",
        ["server", "requests/s", "min-max req/s", "p50 ms", "p99 ms", "vs bare", "vs Redis",
         "errors"],
    )
    for name, rs in results.items():
        lo, hi = min(r.requests_per_s for r in rs), max(r.requests_per_s for r in rs)
        section.rows.append([name, f"{rps[name]:.0f}", f"{lo:.0f}-{hi:.0f}", ms(p50[name]),
                             ms(p99[name]), f"{rps[name] / bare:.2f}x", f"{rps[name] / redis:.2f}x",
                             str(sum(r.errors for r in rs))])
    node_p99, redis_p99 = p99["gossip node"], p99["FastAPI + Redis (redis-py asyncio)"]
    section.goals += [
        (f"gossip node >= 1.0x bare app: {node / bare:.2f}x", node / bare >= 1.0),
        (f"gossip node >= 1.5x Redis-backed app: {node / redis:.2f}x", node / redis >= 1.5),
        (f"gossip node p99 below Redis's: {node_p99:.1f} vs {redis_p99:.1f} ms", node_p99 < redis_p99),
        (f"user route reading shared state >= 0.97x bare app: {user / bare:.2f}x", user / bare >= 0.97),
    ]
    costs = _request_costs()
    base = costs["bare FastAPI + dict"]
    section.notes.append(
        "In process, one request (the app called through ASGI: no server, socket or wrk; CPU "
        "microseconds, median of interleaved runs; benchmarks/asgi_cost.py): "
        + ", ".join(f"{name} {us:.0f} us ({base / us:.2f}x)" for name, us in costs.items())
        + ". The StateDep route pays FastAPI's resolution of one dependency, as any `Depends` does."
    )
    lookup = _lookup_cost()
    section.notes.append(
        f"In process, one read: `state.get(key)` {lookup[0]:.2f} us, `dict.get(key)` {lookup[1]:.3f} us "
        f"({lookup[0] / lookup[1]:.0f}x): three calls down to the store's dict, and the expiry check."
    )
    if quick:
        section.notes.append("Quick mode: short runs, expect wide spread.")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = [n.replace(" (", "\n(") for n in results]
    a.barh(labels, [rps[n] for n in results], color="tab:blue")
    a.set_xlabel("requests/s (median of rounds)")
    a.invert_yaxis()
    b.barh(labels, [p99[n] for n in results], color="tab:red", label="p99")
    b.barh(labels, [p50[n] for n in results], color="tab:orange", label="p50")
    b.set_xlabel("latency ms")
    b.invert_yaxis()
    b.legend()
    b.set_yticklabels([])
    section.save_plot(fig, out_dir, "read_path.png")
    return section


def _request_costs() -> dict[str, float]:
    """CPU microseconds per request, in process, of the bare app's route, the user route
    measured above, and the bare app's route reading the shared state through `StateDep`
    in an app that embeds a node as the README shows."""

    def bare_ready(app: object) -> None:
        apps._values[KEY] = VALUE

    def node_ready(app: Any) -> None:
        app.state.shared_state.set(KEY, VALUE)

    query = f"?key={KEY}"
    return per_request_us({
        "bare FastAPI + dict": Target(apps.bare, "/get" + query, bare_ready),
        "user route reading shared state": Target(apps.node_async_get(), "/fast/get" + query, node_ready),
        "README route taking `StateDep`": Target(apps.embedded_state_dep(), "/get" + query, node_ready),
    })


def _lookup_cost(reads: int = 200_000) -> tuple[float, float]:
    """Microseconds per `state.get()` and per `dict.get()` of one key (in process)."""
    import anyio

    from node.server.settings import Settings
    from node.state import SharedState

    async def make() -> SharedState:
        return SharedState(Settings(node_id="lookup", discovery_dir="off"))

    state = anyio.run(make)
    state.set(KEY, VALUE)
    plain = {KEY: VALUE}
    started = time.perf_counter()
    for _ in range(reads):
        state.get(KEY)
    shared = (time.perf_counter() - started) / reads * 1e6
    started = time.perf_counter()
    for _ in range(reads):
        plain.get(KEY)
    local = (time.perf_counter() - started) / reads * 1e6
    anyio.run(state.aclose)
    return shared, local


if __name__ == "__main__":
    print(run(True, " ".join(sys.argv), Path("/tmp")).markdown())
