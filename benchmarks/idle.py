"""Part 3, idle cost: CPU (from /proc/<pid>/stat) and gossip bytes (from /stats) per
node of an N=10 cluster that holds 10, then 10,000 keys and receives no writes."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from matplotlib import pyplot as plt

from benchmarks.loading import converge, fill
from benchmarks.rawhttp import Connection
from benchmarks.report import Section
from benchmarks.system import cpu_seconds, load_average, start_cluster
from gossip.config import Config
from node.tools.local_cluster import LocalCluster

NODES = 10
INTERVAL = Config.gossip_interval  # the default of the library, the node and the launcher

GOAL_PERCENT = 1  # of one core per node, at the default interval


async def _traffic(ports: list[int]) -> list[int]:
    """bytes_sent + bytes_received of each node's own exchanges so far."""
    out = []
    for port in ports:
        conn = Connection(port)
        stats = (await conn.get_json("/stats"))[1]
        conn.close()
        out.append(stats["bytes_sent"] + stats["bytes_received"])
    return out


def _window(cluster: LocalCluster, seconds: float) -> tuple[list[float], list[float], str]:
    """Per node: % of one core and bytes/s over `seconds` of idling."""
    pids = cluster.pids
    bytes_before = asyncio.run(_traffic(cluster.ports))
    cpu_before, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
    time.sleep(seconds)
    cpu_after, t1 = [cpu_seconds(p) for p in pids], time.monotonic()
    bytes_after = asyncio.run(_traffic(cluster.ports))
    cpu = [(b - a) / (t1 - t0) * 100 for a, b in zip(cpu_before, cpu_after, strict=True)]
    rate = [(b - a) / (t1 - t0) for a, b in zip(bytes_before, bytes_after, strict=True)]
    return cpu, rate, load_average()


def run(quick: bool, command: str, out_dir: Path) -> Section:
    seconds = 6.0 if quick else 30.0
    value = "v" * 100
    results: dict[int, tuple[list[float], list[float], str]] = {}
    cluster = start_cluster(NODES, interval=INTERVAL)
    try:
        loaded = 0
        for keys in (10, 10_000):
            asyncio.run(fill(cluster.ports[0], keys - loaded, value, start=loaded))
            loaded = keys
            asyncio.run(converge(cluster.ports, keys))
            time.sleep(INTERVAL * (5 if quick else 10))  # let deltas and digests settle
            results[keys] = _window(cluster, seconds)
            print(f"  idle {keys} keys: {statistics.mean(results[keys][0]):.2f}% of a core, "
                  f"{statistics.mean(results[keys][1]):.0f} B/s per node", flush=True)
    finally:
        cluster.stop()
    return _section(results, seconds, command, out_dir)


def _section(results: dict[int, tuple[list[float], list[float], str]], seconds: float,
             command: str, out_dir: Path) -> Section:
    section = Section(
        "3. Idle cost", command,
        f"N={NODES} nodes, gossip interval {INTERVAL} s (the default of Config, gossip-node and "
        f"gossip-cluster; the local() preset's 0.2 s costs about 5x), fanout 3, values of 100 bytes, no "
        f"writes during a {seconds:.0f} s window after the cluster agreed; CPU = (utime + stime) "
        f"from /proc/<pid>/stat over the window; bytes = bytes_sent + bytes_received from /stats "
        f"(gossip bodies of the exchanges a node starts; HTTP headers not counted).",
        ["keys", "CPU % of a core per node (mean)", "min-max", "bytes/s per node (mean)",
         "min-max", "load average after"],
    )
    for keys, (cpu, rate, load) in results.items():
        section.rows.append([f"{keys:,}", f"{statistics.mean(cpu):.2f}",
                             f"{min(cpu):.2f}-{max(cpu):.2f}", f"{statistics.mean(rate):,.0f}",
                             f"{min(rate):,.0f}-{max(rate):,.0f}", load])
    small, large = (statistics.mean(results[k][0]) for k in (10, 10_000))
    small_b, large_b = (statistics.mean(results[k][1]) for k in (10, 10_000))
    section.goals += [
        (f"< {GOAL_PERCENT}% of a core per node: {small:.2f}% (10 keys), {large:.2f}% (10,000 keys)",
         max(small, large) < GOAL_PERCENT),
        (f"10,000-key figure within 2x the 10-key one: CPU {large / small:.2f}x, "
         f"bytes {large_b / small_b:.2f}x", large / small <= 2 and large_b / small_b <= 2),
    ]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [f"{k:,} keys" for k in results]
    a.bar(labels, [statistics.mean(r[0]) for r in results.values()], color="tab:blue")
    a.axhline(GOAL_PERCENT, color="red", linestyle="--", label=f"goal {GOAL_PERCENT}%")
    a.set_ylabel("CPU % of one core per node")
    a.legend()
    b.bar(labels, [statistics.mean(r[1]) for r in results.values()], color="tab:green")
    b.set_ylabel("gossip bytes/s per node")
    section.save_plot(fig, out_dir, "idle_cost.png")
    return section


if __name__ == "__main__":
    print(run(True, " ".join(sys.argv), Path("/tmp")).markdown())
