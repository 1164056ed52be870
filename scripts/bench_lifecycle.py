"""Figures for the node lifecycle on a real local cluster (interval 0.2 s by default):
crash detection time, false suspicions with no faults and with a node paused now and
then, catch-up after an empty restart, and the latency cost of replicas=k.

    python -m scripts.bench_lifecycle --nodes 10 --quiet-seconds 120 --pause-seconds 60
"""

from __future__ import annotations

import argparse
import platform
import signal
import statistics
import time

import httpx

from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile


def statuses(client: httpx.Client, url: str) -> dict[str, str]:
    return {m["id"]: m["status"] for m in client.get(url + "/members").json()["members"]}


def watch(
    client: httpx.Client, cluster: LocalCluster, seconds: float, paused: str | None = None
) -> dict[str, int]:
    """Poll every node's view for `seconds`; count each time a live node is newly seen
    as suspect or dead by some observer (pausing `paused` 1 s in every 5 s if given)."""
    counts = {"suspect": 0, "dead": 0}
    last: dict[tuple[str, str], str] = {}
    started = time.monotonic()
    next_pause = started + 2
    while (now := time.monotonic()) - started < seconds:
        if paused and now >= next_pause:
            cluster.kill(paused, signal.SIGSTOP)
            time.sleep(1.0)
            cluster.kill(paused, signal.SIGCONT)
            next_pause += 5
        for observer, url in zip(cluster.ids, cluster.urls, strict=True):
            if observer == paused and paused:
                continue
            for member, status in statuses(client, url).items():
                before = last.get((observer, member), "alive")
                if status in counts and status != before:
                    counts[status] += 1
                last[(observer, member)] = status
        time.sleep(0.1)
    return counts


def detection(client: httpx.Client, cluster: LocalCluster, victim: str) -> list[float]:
    """kill -9 `victim`; seconds until each other node shows it dead."""
    others = [(n, u) for n, u in zip(cluster.ids, cluster.urls, strict=True) if n != victim]
    started = time.monotonic()
    cluster.kill(victim)
    seen: dict[str, float] = {}
    while len(seen) < len(others) and time.monotonic() - started < 60:
        for node, url in others:
            if node not in seen and statuses(client, url).get(victim) == "dead":
                seen[node] = time.monotonic() - started
        time.sleep(0.02)
    return sorted(seen.values())


def replicas_cost(client: httpx.Client, url: str, writes: int) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for n in range(writes):
        for k in out:  # interleaved, so the three see the same machine
            started = time.perf_counter()
            client.post(url + "/set", json={"key": f"r{n}", "value": n, "replicas": k}).raise_for_status()
            out[k].append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--quiet-seconds", type=float, default=120)
    p.add_argument("--pause-seconds", type=float, default=60)
    p.add_argument("--writes", type=int, default=100)
    args = p.parse_args()
    print(f"# lifecycle, {args.nodes} local nodes, interval {args.interval} s, default phi thresholds; "
          f"{platform.node()} {time.strftime('%Y-%m-%d')}")
    with LocalCluster(args.nodes, interval=args.interval) as cluster, httpx.Client(timeout=5) as client:
        quiet = watch(client, cluster, args.quiet_seconds)
        print(f"no faults for {args.quiet_seconds:.0f} s: live nodes marked suspect {quiet['suspect']} "
              f"times, dead {quiet['dead']} times")
        paused = watch(client, cluster, args.pause_seconds, paused=cluster.ids[-1])
        print(f"{cluster.ids[-1]} paused 1 s in every 5 s for {args.pause_seconds:.0f} s: marked suspect "
              f"{paused['suspect']} times, dead {paused['dead']} times (false positives)")
        costs = replicas_cost(client, cluster.urls[0], args.writes)
        for k, ms in costs.items():
            print(f"POST /set replicas={k}: median {statistics.median(ms):.1f} ms, "
                  f"p99 {percentile(ms, 99):.1f} ms over {len(ms)} writes")
        times = detection(client, cluster, cluster.ids[1])
        print(f"kill -9 {cluster.ids[1]}: marked dead by {len(times)} of {args.nodes - 1} nodes; "
              f"median {statistics.median(times):.2f} s, max {max(times):.2f} s")
        cluster.restart(cluster.ids[1])
        started = time.monotonic()
        while len({client.get(u + "/digest").json()["digest"] for u in cluster.urls}) > 1:
            time.sleep(0.02)
        print(f"{cluster.ids[1]} restarted empty: same /digest as the rest after "
              f"{time.monotonic() - started:.2f} s ({args.writes * 3} keys)")


if __name__ == "__main__":
    main()
