"""Launch N gossip nodes on 127.0.0.1, wait until they see each other, keep the rest
serving when one dies (showing what the others think of it), and stop every process
started, by PID, on Ctrl-C or SIGTERM. `gossip-cluster --help` for options."""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

import anyio
import httpx

from gossip.version import __version__
from node.tools.local_cluster import DEFAULT_INTERVAL, ClusterError, LocalCluster, describe_opinions, opinions
from node.tools.propagation import spread_times


class Watcher:
    """While a node is down, paused or back from a restart, print what the other nodes
    think of it each time that changes (from their /members), until it is up and alive
    on every other node."""

    def __init__(self, cluster: LocalCluster, out: TextIO, every: float = 1.0) -> None:
        self.cluster, self.out, self.every = cluster, out, every
        self.shown: dict[str, str] = {}  # node -> the last line printed about it
        self.pids = {n: p.pid for n, p in cluster.procs.items()}
        self.next = 0.0

    def tick(self, client: httpx.Client) -> None:
        cluster = self.cluster
        for node_id, proc in cluster.procs.items():
            if cluster.state(node_id) != "up" or proc.pid != self.pids[node_id]:
                self.shown.setdefault(node_id, "")
                self.pids[node_id] = proc.pid
        if not self.shown or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.every
        tables = cluster.member_tables(client)
        for node_id in list(self.shown):
            seen = opinions(tables, node_id)
            line = f"  {node_id} {cluster.state(node_id)}: {describe_opinions(seen)}"
            if line != self.shown[node_id]:
                print(line, file=self.out, flush=True)
                self.shown[node_id] = line
            if cluster.state(node_id) == "up" and list(seen) == ["alive"]:
                del self.shown[node_id]


def demo(cluster: LocalCluster) -> None:
    """Write through node 1 and show each node receiving the value."""
    key, value = "demo", f"hello-{uuid.uuid4().hex[:6]}"

    async def run() -> list[float | None]:
        async with httpx.AsyncClient(timeout=2.0, verify=cluster.http_verify()) as client:
            return await spread_times(client, cluster.urls, key, value)

    seen = anyio.run(run)
    for node_id, t in sorted(zip(cluster.ids, seen, strict=True), key=lambda p: p[1] or 1e9):
        shown = "not within 10 s" if t is None else f"after {t * 1000:7.1f} ms"
        print(f"  {node_id:<6} has {key}={value!r} {shown}")
    if all(t is not None for t in seen):
        print(f"  all {cluster.size} nodes have it {max(t or 0 for t in seen) * 1000:.1f} ms "
              "after the write started (including the write itself)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gossip-cluster", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--nodes", type=int, default=int(os.environ.get("NODES", 5)), help="how many nodes")
    p.add_argument("--base-port", type=int, default=8001, help="node i gets base+i-1; 0: free ports")
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between gossip rounds")
    p.add_argument("--fanout", type=int, default=3, help="peers per round and per eager push")
    p.add_argument("--no-eager-push", action="store_true", help="spread writes by rounds only")
    p.add_argument("--demo", action="store_true", help="write a key and show it reach every node")
    p.add_argument("--log-dir", type=Path, help="where node logs go (default: a temp dir)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cluster = LocalCluster(
        args.nodes, args.base_port, args.interval, args.fanout, not args.no_eager_push,
        log_dir=args.log_dir,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"starting {args.nodes} nodes (logs in {cluster.log_dir}) ...", flush=True)
        started = time.perf_counter()
        cluster.start()
        print(f"cluster {cluster.cluster_id} up in {time.perf_counter() - started:.1f} s; "
              "every node sees every member\n")
        print(f"  {'node':<6} {'pid':>7}  url")
        for node_id, url in zip(cluster.ids, cluster.urls, strict=True):
            print(f"  {node_id:<6} {cluster.procs[node_id].pid:>7}  {url}")
        print(f"\n  try: curl -s -X POST {cluster.urls[0]}/set -H 'content-type: application/json' "
              "-d '{\"key\": \"color\", \"value\": \"blue\"}'")
        print(f"       curl -s '{cluster.urls[-1]}/get?key=color'\n")
        if args.demo:
            print("demo: writing through n1 ...")
            demo(cluster)
        hint = "; type `help` for status, kill, leave, restart, pause, resume" if sys.stdin.isatty() else ""
        print(f"\nrunning; Ctrl-C stops every node{hint}", flush=True)
        serve(cluster)
    except KeyboardInterrupt:
        return 0
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not orphan nodes
        pids = [p.pid for p in cluster.procs.values() if p.poll() is None]
        cluster.stop()
        if cluster.procs or pids:
            print(f"stopped {len(pids)} nodes (pids {', '.join(map(str, pids))})", flush=True)


def serve(cluster: LocalCluster) -> NoReturn:
    """Run until interrupted: carry out typed commands (from stdin, until it ends), report
    a node whose process ends, and keep the others serving."""
    commands: TextIO | None = sys.stdin
    watcher = Watcher(cluster, sys.stdout)
    with httpx.Client(timeout=1.0, verify=cluster.http_verify()) as client:
        while True:
            for node_id, proc in cluster.procs.items():
                if proc.poll() is not None and node_id not in cluster.down:
                    cluster.down.add(node_id)
                    print(f"  {node_id} (pid {proc.pid}) is {cluster.state(node_id)}; the others keep "
                          f"serving; `restart {node_id}` brings it back", flush=True)
            watcher.tick(client)
            if commands is None or not select.select([commands], [], [], 0.5)[0]:
                if commands is None:
                    time.sleep(0.5)
                continue
            line = commands.readline()
            if not line:
                commands = None  # stdin ended: run on without commands
                continue
            try:
                print(cluster.command_line(line), flush=True)
            except (ClusterError, subprocess.TimeoutExpired) as exc:
                print(f"  error: {exc}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
