"""Benchmark: how long a write on one node takes to be readable on every node of a
local cluster, with eager push on and off, side by side in one run; and the bytes of
one exchange between two agreeing nodes at 10 and 10,000 keys.

    python -m scripts.bench_propagation --nodes 10 --writes 60
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
import uuid

import anyio
import httpx

from gossip.codec import Codec
from gossip.config import Config
from gossip.messages import Reply
from gossip.protocol import GossipProtocol
from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile, spread_times


async def measure(cluster: LocalCluster, writes: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    times = []
    async with httpx.AsyncClient(timeout=5) as client:
        for url in cluster.urls:  # warm every connection first
            await client.get(url + "/health")
        for n in range(writes):
            writer = rng.randrange(cluster.size)
            seen = await spread_times(client, cluster.urls, f"bench-{n % 10}", uuid.uuid4().hex, writer)
            if any(t is None for t in seen):
                print(f"  write {n}: not everywhere within the timeout")
                continue
            times.append(max(t for t in seen if t is not None) * 1000)
    return times


def exchange_bytes(keys: int) -> int:
    """Bytes of one Exchange + Reply between two nodes that already agree on `keys` keys."""
    config = Config.for_tests(eager_push=False)
    codec = Codec(config)
    a = GossipProtocol(config, "a", "mem://a", random.Random(1), 1_000)
    b = GossipProtocol(config, "b", "mem://b", random.Random(2), 1_000, seeds=["mem://a"])
    for i in range(keys):
        a.write(f"key-{i:05d}", {"n": i, "pad": "x" * 20}, 1_000 + i)
    now, total = 100_000, 0
    for _ in range(40):  # until they agree and know each other's digests
        for sender, receiver in ((b, a), (a, b)):
            for out in sender.round(now):
                request = codec.encode(out.message)
                reply = receiver.handle(codec.decode(request), now)
                assert isinstance(reply, Reply)
                answer = codec.encode(reply)
                answered = codec.decode(answer)
                assert isinstance(answered, Reply)
                sender.on_reply(out.address, answered, now)
                total = len(request) + len(answer)
        now += 100
    assert a.state_hash(now) == b.state_hash(now)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--writes", type=int, default=60)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print(f"# propagation, {args.nodes} local nodes, interval {args.interval} s, fanout 3")
    print(f"# {platform.node()} ({platform.machine()}, {platform.python_version()}), "
          f"{time.strftime('%Y-%m-%d')}; measured from the start of POST /set until every "
          "node's GET /get returns the value")
    print(f"{'eager push':<11} {'writes':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    results = {}
    for eager in (True, False):
        with LocalCluster(args.nodes, interval=args.interval, eager_push=eager) as cluster:
            times = anyio.run(measure, cluster, args.writes, args.seed)
        results[eager] = times
        print(f"{'on' if eager else 'off':<11} {len(times):>6} {statistics.median(times):>10.1f} "
              f"{percentile(times, 99):>8.1f} {max(times):>8.1f}", flush=True)
    ratio = statistics.median(results[False]) / statistics.median(results[True])
    print(f"eager push speeds the median up {ratio:.1f}x")
    small, large = exchange_bytes(10), exchange_bytes(10_000)
    print("\n# idle exchange (request + reply) between two agreeing nodes")
    print(f"10 keys: {small} bytes; 10,000 keys: {large} bytes; ratio {large / small:.2f}")


if __name__ == "__main__":
    main()
