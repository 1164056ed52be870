"""Does gossip-sim predict the real cluster?

For each cluster size: launch a real local cluster (eager push off, so writes spread by
the anti-entropy rounds only), time how long each of --writes writes takes to be readable
on every node (write through a random node, poll every node's GET /get?key=K until all
return the value), and, meanwhile, time signed POST /gossip exchanges to measure what one
exchange really costs (network, HMAC, decode, handle, encode, under the same load). Then
run the simulator with the same interval, jitter, fanout and eager push off, and a
latency model taken from that measurement (one way = half the round trip: the minimum as
the base, the mean excess as the exponential tail), and compare the medians.

    python -m scripts.compare_sim_real                        # N = 10 and 20, 30 writes each
    python -m scripts.compare_sim_real --nodes 10 --writes 60 --seed 2
    python -m scripts.compare_sim_real --load 600 --nodes 10  # pushes per write under a load
    python -m scripts.compare_sim_real --saturate --nodes 10  # ... under one wrk per node

With --load RATE the case is a write load instead: eager push on, RATE writes a second
spread over the nodes for --seconds, and the figure compared is the number of pushes
(rumor messages) per write, which batching sets (docs/PROTOCOL.md, R21): the simulator
runs the same load, with half the mean push round trip the nodes measured meanwhile
(`push_seconds` / `pushes_sent` in /stats) as its latency, and must agree within 15 %.
With --saturate the load is the one `make bench` makes instead (one wrk per node, four
connections each, for --seconds; wrk is installed with apt-get if missing): as many writes
as the cluster takes, and the rate the simulator gets is the one they came at.

Wall-clock figures vary from run to run; the simulator's figures depend only on the seed
and the measured latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import re
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import httpx

from gossip.auth import KeyRing, parse_key, sign
from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange
from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile, spread_times
from node.wire.transport import CONTENT_TYPE, GOSSIP_PATH
from scripts.cpu_costs import MEASURED, CpuWatch, describe, measure_costs
from simulations.cpu import CpuModel
from simulations.experiments import Setup, run_trial
from simulations.load import Load, run_load

TOLERANCE = 0.30  # the simulator's median must be within 30% of the measured one
IN_FLIGHT = 64  # writes awaiting an answer, at most
COUNTED = ("rumors_received", "pushes_sent", "push_seconds")  # /stats: pushes received, ended, their time
LOAD_TOLERANCE = 0.15  # and its pushes per write under a load within 15%
KINDS = ("exchange", "reply", "rumor")
BYTES_RECEIVED = re.compile(r'gossip_message_bytes_total\{direction="received",kind="(\w+)"\} (\S+)')
LOOPBACK = 0.00005  # one-way seconds over the loopback, with the CPU modelled (its time is the model's)
CONNECTIONS, WRK_VALUE_BYTES = 4, 32  # per wrk, and the values it writes (benchmarks/write_load.py, set.lua)


@dataclass
class Measured:
    nodes: int
    spread_ms: list[float] = field(default_factory=list)  # per write, time until all nodes had it
    rtt_ms: list[float] = field(default_factory=list)  # per probe exchange
    first_ms: list[float] = field(default_factory=list)  # per write, until the first node had it
    missed: int = 0  # writes not everywhere within the timeout


class Prober:
    """Signed exchanges to the nodes, each posing as the node itself (so membership
    ignores the sender) with a full-size view of records no newer than the nodes'
    own; the reply is a real one. One at a time, to add little load."""

    def __init__(self, cluster: LocalCluster, rng: random.Random) -> None:
        self.cluster, self.rng = cluster, rng
        self.codec = Codec(Config(cluster_id=cluster.cluster_id))
        self.ring = KeyRing.of(parse_key(cluster.key)) if cluster.key else None
        self.view = tuple(MemberInfo(i, u, 0, 0) for i, u in zip(cluster.ids, cluster.urls, strict=True))

    async def once(self, client: httpx.AsyncClient) -> float:
        i = self.rng.randrange(self.cluster.size)
        me = self.view[i]
        body = self.codec.encode(Exchange(me, {}, self.view, ()))
        headers = {"content-type": CONTENT_TYPE}
        if self.ring is not None:
            now_ms = time.time_ns() // 1_000_000
            headers |= sign(self.ring, self.cluster.cluster_id, body, now_ms, secrets.token_hex(16))
        started = time.perf_counter()
        r = await client.post(me.address + GOSSIP_PATH, content=body, headers=headers)
        took = time.perf_counter() - started
        r.raise_for_status()
        return took * 1000

    async def run(self, client: httpx.AsyncClient, out: list[float], stop: anyio.Event) -> None:
        while not stop.is_set():
            out.append(await self.once(client))
            with anyio.move_on_after(0.05):
                await stop.wait()


async def measure(cluster: LocalCluster, writes: int, seed: int) -> Measured:
    rng = random.Random(seed)
    result = Measured(cluster.size)
    prober = Prober(cluster, random.Random(f"{seed}:probe"))
    async with httpx.AsyncClient(timeout=5) as client:
        for url in cluster.urls:  # warm every connection first
            await client.get(url + "/health")
        for n in range(writes):
            writer = rng.randrange(cluster.size)
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(prober.run, client, result.rtt_ms, stop)
                key, value = f"compare-{n % 10}", uuid.uuid4().hex
                seen = await spread_times(client, cluster.urls, key, value, writer)
                stop.set()
            if any(t is None for t in seen):
                result.missed += 1
                continue
            result.spread_ms.append(max(t for t in seen if t is not None) * 1000)
            result.first_ms.append(min(t for t in seen if t is not None) * 1000)
    return result


def simulate(nodes: int, interval: float, fanout: int, rtt_ms: Sequence[float], trials: int,
             seed: int) -> list[float]:
    """Virtual ms to all nodes for `trials` writes, latency from the measured round trips."""
    base = min(rtt_ms) / 2 / 1000
    tail = max(0.0, statistics.mean(rtt_ms) / 2 / 1000 - base)
    setup = Setup(
        nodes=nodes, fanout=fanout, interval=interval, eager=False, synchronous=False,
        latency=base, latency_tail=tail, warmup=10, members_per_message=Config.max_members_per_message,
        detector=True,
    )
    return [run_trial(setup, f"{seed}:compare:{nodes}:{i}").seconds_to(1.0) * 1000 for i in range(trials)]


@dataclass
class LoadRun:
    acked: int  # writes acknowledged
    seconds: float  # from the first write sent to the last one acknowledged
    pushes: int  # rumor messages received, all nodes together
    sent: int  # pushes the nodes ended (delivered or not)
    push_seconds: float  # their total time from sending to the answer, as the nodes saw it
    node_cores: float = 0.0  # cores the nodes used, together, on average (from /proc)
    machine_cores: float = 0.0  # and the whole machine, every process included
    received: dict[str, float] = field(default_factory=dict)  # gossip bytes received by kind

    @property
    def per_write(self) -> float:
        return self.pushes / max(1, self.acked)

    @property
    def rate(self) -> float:
        """Writes per second the cluster took: under an offered rate it cannot absorb,
        less than that rate, and it is this one that sets the batching."""
        return self.acked / self.seconds

    @property
    def push_rtt(self) -> float:
        return self.push_seconds / max(1, self.sent)


async def load_run(cluster: LocalCluster, rate: float, seconds: float, seed: int) -> LoadRun:
    """Paced writes at `rate` through random nodes for `seconds`, at most IN_FLIGHT
    unanswered at a time (a cluster slower than the rate takes fewer; one that gets no
    answer is not acknowledged), each node with a client of its own; what the nodes
    counted meanwhile: pushes received, and how long their own pushes took."""
    rng = random.Random(seed)
    last_ack = started = 0.0
    in_flight = anyio.Semaphore(IN_FLIGHT)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=5))
                   for url in cluster.urls]

        async def totals() -> list[float]:
            stats = [(await client.get("/stats")).json() for client in clients]
            texts = [(await client.get("/metrics")).text for client in clients]
            return [sum(float(s[name]) for s in stats) for name in COUNTED] + received(texts)

        before, acked = await totals(), 0
        watch = CpuWatch([p.pid for p in cluster.procs.values()])

        async def one(i: int) -> None:
            nonlocal acked, last_ack
            try:
                body = {"key": f"load-{seed}-{i}", "value": "x" * 100}
                r = await rng.choice(clients).post("/set", json=body)
            except httpx.TransportError:
                return
            finally:
                in_flight.release()
            if r.status_code == 200:
                acked, last_ack = acked + 1, time.perf_counter()

        async with anyio.create_task_group() as tg:
            started = time.perf_counter()
            for i in range(round(rate * seconds)):
                await anyio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                await in_flight.acquire()
                tg.start_soon(one, i)
        cores = watch.stop()
        await anyio.sleep(1.0)  # the last pushes land
        after = await totals()
    pushes, sent, push_seconds, *kinds = (a - b for a, b in zip(after, before, strict=True))
    return LoadRun(acked, last_ack - started, int(pushes), int(sent), push_seconds, *cores,
                   dict(zip(KINDS, kinds, strict=True)))


def saturating_run(cluster: LocalCluster, seconds: float) -> LoadRun:
    """The write load of `make bench` (one wrk per node, keys of its own) for `seconds`."""
    from benchmarks.system import ensure_debian_tools
    from benchmarks.write_load import load

    ensure_debian_tools({"wrk": "wrk"})

    def totals() -> list[float]:
        stats = [httpx.get(url + "/stats", timeout=10).json() for url in cluster.urls]
        texts = [httpx.get(url + "/metrics", timeout=10).text for url in cluster.urls]
        return [sum(float(s[name]) for s in stats) for name in COUNTED] + received(texts)

    before = totals()
    watch = CpuWatch([p.pid for p in cluster.procs.values()])
    taken = load(cluster.ports, seconds, "compare")
    cores = watch.stop()
    time.sleep(1.0)  # the last pushes land
    pushes, sent, push_seconds, *kinds = (a - b for a, b in zip(totals(), before, strict=True))
    return LoadRun(taken.accepted, seconds, int(pushes), int(sent), push_seconds, *cores,
                   dict(zip(KINDS, kinds, strict=True)))


def received(metrics: Sequence[str]) -> list[float]:
    """Gossip bytes received, by kind (KINDS), all nodes together, from their /metrics."""
    total = dict.fromkeys(KINDS, 0.0)
    for text in metrics:
        for kind, value in BYTES_RECEIVED.findall(text):
            if kind in total:
                total[kind] += float(value)
    return list(total.values())


def compare_load(nodes: int, rate: float | None, seconds: float, interval: float, fanout: int,
                 seed: int, cpu: CpuModel) -> bool:
    """Pushes per write, real and simulated, under `rate` writes/s offered (None: as many
    as one wrk per node gets through). Batching depends on how long a push takes (what
    waits for a peer leaves when its push ends), and on this machine that is mostly the
    time it waits for a CPU. Two predictions: the simulator's CPU model (simulations/cpu.py)
    with the costs measured by scripts/cpu_costs.py, the loopback's latency, and the
    writes as the load sent them (paced at the rate the cluster took; under wrk, writers
    that wait for their answers, so the rate is the simulator's own); and, as before it,
    no CPU but the push round trip the nodes measured as the latency (one way = half) at
    the rate the cluster took. The first must agree within 15 %."""
    with LocalCluster(nodes, interval=interval, fanout=fanout) as cluster:
        real = anyio.run(load_run, cluster, rate, seconds, seed) if rate else saturating_run(cluster, seconds)
    load = Load(nodes=nodes, rate=real.rate, seconds=real.seconds, keys=10**9, interval=interval,
                latency=real.push_rtt / 2)
    held = run_load(load, seed).per_write(nodes, real.seconds)
    clients, value_bytes = (0, load.value_bytes) if rate else (CONNECTIONS, WRK_VALUE_BYTES)
    as_sent = dataclasses.replace(load, latency=LOOPBACK, cpu=cpu, clients=clients, value_bytes=value_bytes)
    timed = run_load(as_sent, seed)
    sim = timed.per_write(nodes, real.seconds)
    scale = nodes * real.seconds / 1000  # kB per node and second -> MB in all
    carried = " ".join(f"{k} {real.received[k] / 1e6:.1f}/{timed.kilobytes[k] * scale:.1f}" for k in KINDS)
    ratio = sim / real.per_write
    within = abs(ratio - 1) <= LOAD_TOLERANCE
    offered = f"{rate:g} writes/s offered" if rate else "one wrk per node"
    print(f"N={nodes} load {offered} for {seconds:g} s: {real.acked} acked in "
          f"{real.seconds:.1f} s ({real.rate:.0f}/s); push round trip "
          f"{real.push_rtt * 1000:.1f} ms (mean, as the nodes saw it); nodes used "
          f"{real.node_cores:.2f} cores (the machine {real.machine_cores:.2f}); pushes per write "
          f"{real.per_write:.2f}\n"
          f"  sim, round trip held at that mean, no CPU: {held:.2f} ({held / real.per_write:.2f})\n"
          f"  sim, CPU modelled ({cpu.cores:g} cores): {timed.writes / real.seconds:.0f} writes/s, push "
          f"round trip {timed.push_seconds * 1000:.1f} ms, nodes used {timed.cpu * nodes:.2f} cores; "
          f"pushes per write {sim:.2f} ({ratio:.2f})  within 15%: {'yes' if within else 'NO'}\n"
          f"  MB received, real/sim (CPU modelled): {carried}",
          flush=True)
    return within


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 20],
                   help="cluster sizes, comma separated")
    p.add_argument("--writes", type=int, default=30, help="measured writes per size (at least 30)")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--fanout", type=int, default=3)
    p.add_argument("--sim-trials", type=int, default=300, help="simulated writes per size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--load", type=float, help="writes/s: compare pushes per write under that load")
    p.add_argument("--saturate", action="store_true",
                   help="compare pushes per write under one wrk per node (make bench's write load)")
    p.add_argument("--seconds", type=float, default=10.0, help="with --load or --saturate: how long")
    p.add_argument("--calibrate", action="store_true",
                   help="with --load or --saturate: measure the CPU costs first (scripts/cpu_costs.py, "
                        "about 30 s) instead of using those measured before")
    args = p.parse_args(argv)
    if args.load or args.saturate:
        rate = None if args.saturate else args.load
        cpu = measure_costs() if args.calibrate else MEASURED
        print(f"# CPU costs: {describe(cpu)}", flush=True)
        ok = all([compare_load(n, rate, args.seconds, args.interval, args.fanout, args.seed, cpu)
                  for n in args.nodes])
        return 0 if ok else 2
    print(f"# sim vs real: interval {args.interval} s, fanout {args.fanout}, eager push off, "
          f"jitter {Config.jitter}, signed gossip; seed {args.seed}")
    print(f"# {platform.node()} ({platform.machine()}, Python {platform.python_version()}), "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    header = (f"{'N':>3} {'writes':>6} {'real median':>11} {'real p90':>8} {'exch rtt med/mean':>17} "
              f"{'sim median':>10} {'sim p90':>8} {'sim/real':>8}  within 30%")
    rows = []
    ok = True
    for n in args.nodes:
        with LocalCluster(n, interval=args.interval, fanout=args.fanout, eager_push=False) as cluster:
            real = anyio.run(measure, cluster, args.writes, args.seed)
        if not real.spread_ms:
            print(f"N={n}: no write reached every node", file=sys.stderr)
            return 1
        sim = simulate(n, args.interval, args.fanout, real.rtt_ms, args.sim_trials, args.seed)
        real_med, sim_med = statistics.median(real.spread_ms), statistics.median(sim)
        ratio = sim_med / real_med
        within = abs(ratio - 1) <= TOLERANCE
        ok &= within
        rows.append(
            f"{n:>3} {len(real.spread_ms):>6} {real_med:>9.0f}ms {percentile(real.spread_ms, 90):>6.0f}ms "
            f"{statistics.median(real.rtt_ms):>7.1f}/{statistics.mean(real.rtt_ms):>5.1f} ms "
            f"{sim_med:>8.0f}ms {percentile(sim, 90):>6.0f}ms {ratio:>8.2f}  {'yes' if within else 'NO'}"
        )
        print(f"N={n}: {len(real.rtt_ms)} probe exchanges, first node had the write after "
              f"{statistics.median(real.first_ms):.1f} ms (median); missed writes: {real.missed}",
              flush=True)
    print(header)
    print("\n".join(rows))
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
