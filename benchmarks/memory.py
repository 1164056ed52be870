"""Part 5, memory: resident set size of an idle node, and of one holding K keys of
100-byte values; the bare FastAPI app holding the same keys, for scale."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from matplotlib import pyplot as plt

from benchmarks.loading import fill
from benchmarks.report import Section
from benchmarks.system import HOST, rss_mb, running, start_cluster, uvicorn_app, wait_http
from node.tools.local_cluster import free_ports

VALUE = "m" * 100
GOAL_MB = 90  # a node holding 100,000 keys


def run(quick: bool, command: str, out_dir: Path) -> Section:
    keys = 20_000 if quick else 100_000
    bare_port = free_ports(1)[0]
    bare = uvicorn_app("bare-memory", "benchmarks.apps:bare", bare_port)
    node = start_cluster(1)
    rows: dict[str, tuple[float, float]] = {}
    try:
        with running(bare):
            wait_http(f"http://{HOST}:{bare_port}/health", bare)
            time.sleep(2)
            idle = {"gossip node": rss_mb(node.pids[0]), "bare FastAPI + dict": rss_mb(bare.pid)}
            started = time.perf_counter()
            asyncio.run(fill(node.ports[0], keys, VALUE))
            fill_s = time.perf_counter() - started
            asyncio.run(fill(bare_port, keys, VALUE))
            time.sleep(2)
            full = {"gossip node": rss_mb(node.pids[0]), "bare FastAPI + dict": rss_mb(bare.pid)}
            rows = {name: (idle[name], full[name]) for name in idle}
    finally:
        node.stop()
    print(f"  memory: {rows}", flush=True)
    return _section(rows, keys, fill_s, quick, command, out_dir)


def _section(rows: dict[str, tuple[float, float]], keys: int, fill_s: float, quick: bool,
             command: str, out_dir: Path) -> Section:
    section = Section(
        "5. Memory", command,
        f"one node alone (a 1-node cluster) and the bare FastAPI app; RSS = VmRSS from "
        f"/proc/<pid>/status 2 s after start and 2 s after {keys:,} POST /set of keys "
        f"`key-000000`... with {len(VALUE)}-byte string values (16 concurrent connections; the "
        f"node took {fill_s:.0f} s to take them).",
        ["process", "idle RSS MB", f"RSS MB with {keys:,} keys", "per key (bytes)"],
    )
    for name, (idle, full) in rows.items():
        section.rows.append([name, f"{idle:.1f}", f"{full:.1f}",
                             f"{(full - idle) * 2**20 / keys:.0f}"])
    idle, full = rows["gossip node"]
    if quick:
        estimate = idle + (full - idle) * 100_000 / keys
        section.goals.append((f"<= {GOAL_MB} MB with 100,000 keys: estimated {estimate:.0f} MB from "
                              f"{keys:,} keys (quick mode)", estimate <= GOAL_MB))
    else:
        section.goals.append((f"<= {GOAL_MB} MB with 100,000 keys: {full:.1f} MB", full <= GOAL_MB))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(rows)
    ax.barh([f"{n}\nidle" for n in names], [rows[n][0] for n in names], color="grey")
    ax.barh([f"{n}\n{keys:,} keys" for n in names], [rows[n][1] for n in names], color="tab:blue")
    ax.axvline(GOAL_MB, color="red", linestyle="--", label=f"goal {GOAL_MB} MB")
    ax.set_xlabel("RSS MB")
    ax.legend()
    section.save_plot(fig, out_dir, "memory.png")
    return section


if __name__ == "__main__":
    print(run(True, " ".join(sys.argv), Path("/tmp")).markdown())
