"""What a node's work costs in CPU on this machine: the figures of the simulator's CPU
model (simulations/cpu.py), measured, never fitted to the figures it is to predict.

In process (CPU time of this thread, so other work on the machine weighs little; each
figure the median of five rounds):
- apply: a push of k entries (k = 1..100) from one of ten nodes to another, decoded by
  the real Codec and handled by the receiver's GossipProtocol (checks, merges, watermarks,
  relays queued); the least-squares line through the per-k medians gives a base and a
  cost per entry;
- encode: the same push encoded by its sender, per entry;
- write: GossipProtocol.write of one key;
- serve: an exchange whose delta brings k entries (k = 1..500), decoded and handled, its
  reply encoded; read: a reply bringing k entries, decoded and taken in (on_reply).

On a real node (CPU time of its process, from /proc, less what it spends idle):
- a signed POST /gossip push of k entries (k = 1 and 50) sent by this process through the
  node's own transport, four in flight at once: the node's cost per push, and this
  process's (the sender's: encode, sign, send, read the answer), each the median of
  three runs of 1,200;
- POST /set under one wrk with four connections (make bench's load), the node alone: a
  client's write, HTTP included.

    python -m scripts.cpu_costs                # everything (about 40 s, starts one node and wrk)
    python -m scripts.cpu_costs --in-process   # the in-process figures only (a few seconds)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import anyio

from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Outgoing, Reply, Summary
from gossip.protocol import GossipProtocol
from node.wire.transport import wall_ms
from simulations.cpu import CpuModel

EPOCH_MS = 1_700_000_000_000
CLOSED = "http://127.0.0.1:9"  # the calibrating sender's address: nothing listens there
CORES = 2  # this machine's
SENDERS = 4  # pushes to a real node in flight at once (as many as wrk's connections)
SIZES = (1, 2, 5, 10, 20, 30, 50, 75, 100)  # entries per push
VALUE = "v" * 32  # the value make bench's wrk script writes


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x: (a, b)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def cpu_now() -> float:
    return time.thread_time()


class Pushes:
    """Pushes from one of ten nodes that know each other to the head of its tree (which
    queues relays to its part of the cover, as in a real cluster; they are dropped)."""

    def __init__(self, config: Config, nodes: int = 10, peers: Sequence[MemberInfo] = (),
                 name: str = "calibration") -> None:
        """`peers`: real nodes to push to instead of the nine in-process ones."""
        self.config, self.codec = config, Codec(config)
        self.now = wall_ms() if peers else EPOCH_MS
        sender = GossipProtocol(config, name, CLOSED, random.Random(0), self.now)
        protocols = [GossipProtocol(config, f"n{i}", f"http://n{i}", random.Random(i), self.now)
                     for i in range(1, 1 if peers else nodes)]
        infos = [sender.membership.me, *peers, *(p.membership.me for p in protocols)]
        for p in (sender, *protocols):
            p.membership.merge(infos, self.now)
        self.sender, self.real = sender, bool(peers)
        self.at = {p.membership.me.address: p for p in protocols}
        self.keys = 0

    def write(self) -> None:
        self.keys += 1
        self.sender.write(f"{self.sender.membership.me.id}-{self.keys}", VALUE, self.now)

    def push(self, k: int) -> tuple[Outgoing, bytes, GossipProtocol | None]:
        """k fresh writes at the sender; the push that carries them to one peer, encoded,
        and that peer (None: a real one)."""
        self.now = wall_ms() if self.real else self.now + 1
        for _ in range(k):
            self.write()
        first, *others = self.sender.take_rumors()
        for o in others:
            self.sender.push_ended(o, delivered=True)
        return first, self.codec.encode(first.message), self.at.get(first.address)

    def ended(self, out: Outgoing, receiver: GossipProtocol | None) -> None:
        self.sender.push_ended(out, delivered=True)
        if receiver is not None:
            for relay in receiver.take_rumors():
                receiver.push_ended(relay, delivered=True)


def _median_cost(action: Callable[[], None], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = cpu_now()
        action()
        times.append(cpu_now() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class InProcess:
    apply_base: float  # seconds: decode and handle a push, fixed part
    apply_per_entry: float  # and per entry
    encode_per_entry: float  # the sender's encoding, per entry
    write: float  # GossipProtocol.write of one key
    serve_base: float  # decode and handle an exchange, encode the reply, fixed part
    serve_per_entry: float  # and per entry of its delta
    read_base: float  # decode a reply and take it in (on_reply), fixed part
    read_per_entry: float  # and per entry of its delta

    def lines(self) -> list[str]:
        return [f"apply (decode + handle) of a push: {self.apply_base * 1e6:.0f} us + "
                f"{self.apply_per_entry * 1e6:.1f} us per entry",
                f"encode of a push: {self.encode_per_entry * 1e6:.1f} us per entry",
                f"write of one key: {self.write * 1e6:.0f} us",
                f"serve an exchange (decode, handle, encode the reply): {self.serve_base * 1e6:.0f} us + "
                f"{self.serve_per_entry * 1e6:.1f} us per entry of its delta",
                f"read a reply (decode, on_reply): {self.read_base * 1e6:.0f} us + "
                f"{self.read_per_entry * 1e6:.1f} us per entry of its delta"]


def _pair(config: Config, k: int) -> tuple[GossipProtocol, GossipProtocol]:
    """Two of ten nodes that know each other, the first with k writes of its own."""
    first, second, *_ = Pushes(config).at.values()
    for i in range(k):
        first.write(f"key-{i}", VALUE, EPOCH_MS + 1)
    return first, second


def _delta(summary: Summary) -> int:
    return sum(len(d.entries) for d in summary.delta)


def summaries(reps: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Per delta size, the median CPU seconds to serve an exchange whose delta holds that
    many entries the receiver lacks, and to read a reply that brings as many."""
    config = Config(cluster_id="calibration")
    codec = Codec(config)
    served: list[tuple[float, float]] = []
    read: list[tuple[float, float]] = []
    for k in (*SIZES, 200, 500):
        serve_times, read_times = [], []
        for _ in range(reps):
            first, second = _pair(config, k)
            out = first.replication(second.membership.me.address)  # all that `first` wrote
            assert isinstance(out.message, Exchange) and _delta(out.message) == k
            data = codec.encode(out.message)
            start = cpu_now()
            reply = second.handle(codec.decode(data), EPOCH_MS + 2)
            codec.encode(reply)  # type: ignore[arg-type]
            serve_times.append(cpu_now() - start)
            first, second = _pair(config, k)
            asked = second.replication(first.membership.me.address)  # it lacks `first`'s writes
            answer = first.handle(asked.message, EPOCH_MS + 2)
            assert isinstance(answer, Reply) and _delta(answer) == k
            data = codec.encode(answer)
            start = cpu_now()
            second.on_reply(first.membership.me.address, codec.decode(data), EPOCH_MS + 3)  # type: ignore[arg-type]
            read_times.append(cpu_now() - start)
        served.append((k, statistics.median(serve_times)))
        read.append((k, statistics.median(read_times)))
    return served, read


def in_process(rounds: int = 5) -> InProcess:
    """The in-process figures: each the median of `rounds` measurements (other work on a
    shared machine slows some of them, not most)."""
    runs = [_in_process() for _ in range(rounds)]
    return InProcess(*(statistics.median(getattr(r, f.name) for r in runs) for f in fields(InProcess)))


def _in_process(reps: int = 20) -> InProcess:
    pushes = Pushes(Config(cluster_id="calibration"))
    applied, encoded = [], []
    for warmup in (True, False):
        for k in SIZES:
            apply_times, encode_times = [], []
            for _ in range(reps):
                out, data, receiver = pushes.push(k)
                start = cpu_now()
                pushes.codec.encode(out.message)
                encode_times.append(cpu_now() - start)
                start = cpu_now()
                assert receiver is not None
                receiver.handle(pushes.codec.decode(data), pushes.now)
                apply_times.append(cpu_now() - start)
                pushes.ended(out, receiver)
            if not warmup:
                applied.append((k, statistics.median(apply_times)))
                encoded.append((k, statistics.median(encode_times)))
    base, per_entry = fit(applied)
    _, encode_per_entry = fit(encoded)
    write = _median_cost(pushes.write, 20 * reps)
    summaries(2)  # warm up
    served, read = summaries(reps // 2)
    return InProcess(base, per_entry, encode_per_entry, write, *fit(served), *fit(read))


@dataclass(frozen=True)
class OnNode:
    push: dict[int, float]  # entries -> the node's CPU seconds per push of that many
    send: dict[int, float]  # entries -> the sender's CPU seconds per push (encode, sign, send, answer)
    write: float  # the node's CPU seconds per POST /set under wrk
    idle: float  # the node's CPU seconds per second, idle

    def lines(self) -> list[str]:
        out = [f"idle node: {self.idle * 1000:.1f} ms of CPU per second"]
        for k in self.push:
            out.append(f"push of {k} entries: {self.push[k] * 1e6:.0f} us at the node, "
                       f"{self.send[k] * 1e6:.0f} us at the sender")
        out.append(f"POST /set under wrk: {self.write * 1e6:.0f} us at the node")
        return out


async def _pushes(url: str, key: str, cluster_id: str, pid: int, sizes: Sequence[int],
                  count: int) -> tuple[dict[int, float], dict[int, float], float]:
    """Per size: the node's and the sender's CPU per push; and the node's idle CPU rate."""
    import threading

    from gossip.auth import KeyRing, parse_key
    from node.server.inbox import Signatures
    from node.wire.traffic import Traffic
    from node.wire.transport import HttpTransport

    config = Config(cluster_id=cluster_id)
    senders = [Pushes(config, peers=[MemberInfo("n1", url, 1, 0)], name=f"calibration-{i}")
               for i in range(SENDERS)]
    signatures = Signatures(KeyRing.of(parse_key(key)), config, threading.Lock())
    transport = HttpTransport(Codec(config), None, signatures, Traffic())

    async def run(k: int, n: int) -> tuple[float, float, float]:
        """n pushes of k entries, from the senders at once: the node's CPU, ours for
        sending them (making them aside), and the wall time."""
        made = 0.0

        async def send(pushes: Pushes) -> None:
            nonlocal made
            for _ in range(n // len(senders)):
                start = time.process_time()
                out, _, _ = pushes.push(k)
                made += time.process_time() - start
                await transport.send(out.address, out.message)
                pushes.ended(out, None)

        node, ours, wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for pushes in senders:
                tg.start_soon(send, pushes)
        return cpu_seconds(pid) - node, time.process_time() - ours - made, time.perf_counter() - wall

    async def idle(seconds: float) -> float:
        node = cpu_seconds(pid)
        await anyio.sleep(seconds)
        return (cpu_seconds(pid) - node) / seconds

    try:
        await run(10, count // 5)  # warm up: the node learns the sender
        rate = await idle(3.0)
        node_cost, sender_cost = {}, {}
        for k in sizes:  # each the median of three runs
            runs = [await run(k, count) for _ in range(3)]
            node_cost[k] = statistics.median(max(0.0, node - rate * wall) / count for node, _, wall in runs)
            sender_cost[k] = statistics.median(sender / count for _, sender, _ in runs)
        rate = (rate + await idle(3.0)) / 2
    finally:
        await transport.aclose()
    return node_cost, sender_cost, rate


def on_node(sizes: Sequence[int] = (1, 50), count: int = 1200, seconds: float = 5.0) -> OnNode:
    """One real node (signed gossip, as the comparison runs them)."""
    from benchmarks.system import ensure_debian_tools
    from benchmarks.write_load import load
    from node.tools.local_cluster import LocalCluster

    ensure_debian_tools({"wrk": "wrk"})
    with LocalCluster(1) as cluster:
        assert cluster.key is not None
        pid = cluster.procs[cluster.ids[0]].pid
        push, send, idle = anyio.run(_pushes, cluster.urls[0], cluster.key, cluster.cluster_id, pid,
                                     sizes, count)
        before = cpu_seconds(pid)
        taken = load(cluster.ports, seconds, "calibration")
        write = max(0.0, cpu_seconds(pid) - before - idle * seconds) / max(1, taken.accepted)
    return OnNode(push, send, write, idle)


def cpu_seconds(pid: int) -> float:
    from benchmarks.system import cpu_seconds as of

    return of(pid)


def model(measured: InProcess, node: OnNode, cores: float = CORES) -> CpuModel:
    """The simulator's costs: a pushed entry's from the in-process apply, a message's from
    the node's cost of a push of one entry less that entry, a summary's from how much more
    the in-process exchange costs than a push, a delta's entry from the exchange; the
    sender's and a write's as the node spent them."""
    per_entry = measured.apply_per_entry
    return CpuModel(per_message=node.push[1] - per_entry, per_entry=per_entry,
                    per_summary=measured.serve_base - measured.apply_base,
                    per_delta_entry=measured.serve_per_entry, per_send=node.send[1], per_write=node.write,
                    cores=cores)


def measure_costs(cores: float = CORES) -> CpuModel:
    """The costs measured now (about 30 s)."""
    return model(in_process(), on_node(), cores)


# As `python -m scripts.cpu_costs` measured them on the machine of the comparisons
# (docs/SIMULATIONS.md, "Under a write load").
MEASURED = CpuModel(per_message=116e-6, per_entry=8.4e-6, per_summary=78e-6, per_delta_entry=4.1e-6,
                    per_send=100e-6, per_write=279e-6, cores=CORES)


class CpuWatch:
    """The CPU that processes (by pid) and the whole machine use between start and stop."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._start = self._now()

    def _now(self) -> tuple[float, float, float, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return time.perf_counter(), sum(cpu_seconds(p) for p in self.pids), sum(fields) - idle, sum(fields)

    def stop(self) -> tuple[float, float]:
        """Cores the processes used on average, and the machine's busy cores."""
        end = self._now()
        wall, procs, busy, total = (b - a for a, b in zip(self._start, end, strict=True))
        return procs / wall, busy / max(1, total) * (os.cpu_count() or 1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in-process", action="store_true", help="only the in-process figures")
    args = p.parse_args(argv)
    measured = in_process()
    print("\n".join(measured.lines()), flush=True)
    if args.in_process:
        return 0
    node = on_node()
    print("\n".join(node.lines()), flush=True)
    print(f"model: {describe(model(measured, node))}", flush=True)
    return 0


def describe(cpu: CpuModel) -> str:
    us = {f.name: getattr(cpu, f.name) * 1e6 for f in fields(cpu) if f.name != "cores"}
    return (f"{us['per_message']:.0f} us per request served + {us['per_entry']:.1f} us per pushed entry; "
            f"{us['per_summary']:.0f} us more per exchange served or reply read + "
            f"{us['per_delta_entry']:.1f} us per entry of its delta; {us['per_send']:.0f} us per message "
            f"sent; {us['per_write']:.0f} us per client write; {cpu.cores:g} cores")


if __name__ == "__main__":
    sys.exit(main())
