"""Message size, failure detection and digests as the cluster grows: the same runs with
whole views and with sampled ones (Config.view_size, R13, R17), side by side.

A quiet run is a cluster that has found itself (every node introduced to every other)
gossiping with a light write load; it counts the bytes of every exchange and reply, the
live members any node marked dead, and then how long the nodes take to mark a crashed
one dead. A probe measures the messages of one node that knows N members, for clusters
too large to run whole. A restart history follows the digests of a cluster in which one
node after another restarts empty, again and again (R20).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import DEAD, MemberInfo, Membership
from gossip.protocol import GossipProtocol
from gossip.store import Entry, writer_id
from simulations.engine import EPOCH_MS, Simulation
from simulations.network import NetworkModel
from simulations.simnode import SimNode

WRITERS = 10  # nodes taking the light write load: their digests carry 10 writers
WRITE_EVERY = 5.0  # seconds between writes, cluster-wide


def variants(base: Config | None = None) -> dict[str, Config]:
    """Before: every member in every message (as before sampling, up to the decoder's
    limit); after: the default sampled view."""
    config = base or Config()
    return {"before": config.replace(view_size=config.max_members_per_message), "after": config}


@dataclass
class QuietRun:
    nodes: int
    variant: str
    seconds: float
    messages: int = 0  # exchanges and replies
    mean_bytes: float = 0.0
    max_bytes: int = 0
    false_dead: int = 0  # times a live member was marked dead by some node
    detection: list[float] = field(default_factory=list)  # per observer, seconds after the crash
    undetected: int = 0  # observers that had not marked the crashed node dead by the timeout


def quiet_run(nodes: int, variant: str, config: Config, seconds: float, seed: int = 1,
              crash_timeout: float | None = None) -> QuietRun:
    """`seconds` of a fault-free cluster of `nodes`, then (if crash_timeout) one node
    crashed and the wait, at most crash_timeout, until every other marks it dead."""
    network = NetworkModel(latency=0.002, latency_tail=0.001)
    sim = Simulation(config, network, f"{seed}:quiet:{nodes}:{variant}")
    sim.add_nodes(nodes)
    sim.introduce_all()
    run = QuietRun(nodes, variant, seconds)
    victim: list[str] = []
    crashed_at: list[float] = []
    detected: dict[str, float] = {}

    def watch(node: SimNode) -> None:
        events = node.protocol.membership.events
        while events:
            event = events.popleft()
            if event.kind != DEAD:
                continue
            if victim and event.member == victim[0]:
                detected.setdefault(node.id, sim.now - crashed_at[0])
            else:
                run.false_dead += 1

    sim.watchers.append(watch)
    rng = random.Random(f"{seed}:writes")
    writers = list(sim.nodes)[:WRITERS]

    def write() -> None:
        up = [w for w in writers if sim.nodes[w].up]
        sim.write(rng.choice(up), f"k{rng.randrange(100)}", rng.randrange(10**6))
        sim.after(WRITE_EVERY, write)

    sim.after(WRITE_EVERY, write)
    sim.run_until(seconds)
    traffic = sim.traffic
    run.messages = traffic.messages["exchange"] + traffic.messages["reply"]
    run.mean_bytes = (traffic.bytes["exchange"] + traffic.bytes["reply"]) / max(1, run.messages)
    run.max_bytes = max(traffic.largest["exchange"], traffic.largest["reply"])
    if crash_timeout is not None:
        victim.append(list(sim.nodes)[-1])
        crashed_at.append(sim.now)
        sim.crash(victim[0])
        sim.wait_for(lambda: len(detected) == nodes - 1, crash_timeout, step=1.0)
        run.detection = sorted(detected.values())
        run.undetected = nodes - 1 - len(detected)
    return run


@dataclass
class Probe:
    nodes: int
    variant: str
    messages: int
    mean_bytes: float
    max_bytes: int
    heartbeat_interval_s: float  # what the detector expects (R17)


def probe(nodes: int, variant: str, config: Config, rounds: int = 100, seed: int = 1) -> Probe:
    """The exchanges one node sends over `rounds` rounds when it knows `nodes - 1` others
    (named and addressed as in the simulator) and its digest lists WRITERS writers: the
    message of any node in a cluster of that size, without running the cluster."""
    rng = random.Random(f"{seed}:probe:{nodes}")
    node = GossipProtocol(config, "n0", "sim://n0", rng, EPOCH_MS)
    infos = [MemberInfo(f"n{i}", f"sim://n{i}", EPOCH_MS, rng.randrange(1000)) for i in range(1, nodes)]
    node.membership.merge(infos, EPOCH_MS)
    for i in range(1, WRITERS):
        origin = writer_id(f"n{i}", EPOCH_MS)
        entry = Entry(f"k{i}", i, node.clock.tick(EPOCH_MS), origin)
        node.store.merge(entry)
        node.store.advance(origin, node.store.watermark(origin), entry.ts)
    node.write("k0", 0, EPOCH_MS)
    codec = Codec(config)
    sizes: list[int] = []
    for r in range(rounds):
        now = EPOCH_MS + (r + 1) * int(config.gossip_interval * 1000)
        node.membership.merge([replace_heartbeat(i, r) for i in infos], now)  # every member alive
        sizes.extend(len(codec.encode(out.message)) for out in node.round(now))
    expected = node.membership.heartbeat_interval_ms() / 1000
    return Probe(nodes, variant, len(sizes), statistics.fmean(sizes), max(sizes), expected)


def replace_heartbeat(info: MemberInfo, beat: int) -> MemberInfo:
    return MemberInfo(info.id, info.address, info.generation, info.heartbeat + beat + 1)


@dataclass
class DigestPoint:
    at: float  # virtual seconds
    lives: int  # restarts so far
    digest: int  # most writers in any node's digest
    retired_sets: int  # distinct retired sets among the nodes (1: they all agree)
    retired_kept: int  # most retired writers any node remembers
    writers_ever: int


def restart_history(nodes: int = 10, restarts: int = 200, every: float = 5.0, seed: int = 1,
                    config: Config | None = None) -> list[DigestPoint]:
    """Node after node restarted empty every `every` seconds, each life writing once, and
    the digests meanwhile: one point every 20 restarts."""
    config = config or Config(gossip_interval=1.0, tombstone_grace=60.0, reap_after=120.0)
    sim = Simulation(config, NetworkModel(latency=0.002, loss=0.01), f"{seed}:lives")
    sim.add_nodes(nodes, seeds=["n0"])
    sim.run_for(10)
    ids = list(sim.nodes)
    points = []
    writers: set[str] = set()
    for life in range(1, restarts + 1):
        victim = ids[1 + (life - 1) % (nodes - 1)]  # n0 stays: everyone's seed
        sim.crash(victim)
        sim.run_for(0.5)
        sim.restart(victim, keep_state=False, seeds=["n0"])
        sim.run_for(every - 0.5)
        entry = sim.write(victim, f"life{life % 20}", life)
        writers.add(entry.origin)
        if life % 20 == 0:
            protocols = [n.protocol for n in sim.up_nodes()]
            points.append(DigestPoint(
                sim.now, life, max(len(p.store.watermarks) for p in protocols),
                len({p.store.retired.summary(False) for p in protocols}),
                max(len(p.store.retired) for p in protocols), len(writers),
            ))
    return points


@dataclass
class Heartbeats:
    nodes: int
    variant: str
    rounds: int
    false_dead: int = 0  # times a live member was marked dead by some node
    false_suspect: int = 0
    detection: list[float] = field(default_factory=list)  # per observer, seconds after the crash
    undetected: int = 0


def heartbeats(nodes: int, variant: str, config: Config, rounds: int, seed: int = 1,
               crash_timeout: int | None = None) -> Heartbeats:
    """Membership alone, in rounds: each node beats, judges its members (the real
    Membership.update), and trades views (the real Membership.view and merge) with
    `fanout` random live peers, both ways, as an exchange and its reply do. No store and
    no codec, so that N=1000 runs ten minutes of virtual time; message sizes come from
    the full simulator and the probe. Then, if crash_timeout, one node stops and the
    rounds go on until every other marks it dead (at most crash_timeout rounds)."""
    rng = random.Random(f"{seed}:heartbeats:{nodes}:{variant}")
    interval_ms = int(config.gossip_interval * 1000)
    offsets = sorted((rng.randrange(interval_ms), i) for i in range(nodes))  # each node's time in a round
    members = [_membership(i, config) for i in range(nodes)]
    for m in members:
        m.merge([other.me for other in members], EPOCH_MS)
    by_address = {m.me.address: m for m in members}
    run = Heartbeats(nodes, variant, rounds)
    down: set[int] = set()
    crashed_ms = 0
    detected: dict[int, float] = {}

    def one_round(r: int) -> None:
        for offset, i in offsets:
            if i in down:
                continue
            me, now = members[i], EPOCH_MS + r * interval_ms + offset
            me.beat()
            me.update(now)
            for event in me.events:
                if event.kind == DEAD and down and event.member == f"n{min(down)}":
                    detected.setdefault(i, (now - crashed_ms) / 1000)
                elif event.kind == DEAD:
                    run.false_dead += 1
                elif event.kind == "suspect" and not (down and event.member == f"n{min(down)}"):
                    run.false_suspect += 1
            me.events.clear()
            for address in me.pick_peers(config.fanout, rng):
                peer = by_address[address]
                if int(peer.me.id[1:]) in down:
                    continue
                peer.merge([me.me, *me.view(rng)], now)
                me.merge([peer.me, *peer.view(rng)], now)

    for r in range(rounds):
        one_round(r)
    if crash_timeout is not None:
        down.add(nodes - 1)
        crashed_ms = EPOCH_MS + rounds * interval_ms
        for r in range(rounds, rounds + crash_timeout):
            one_round(r)
            if len(detected) == nodes - 1:
                break
        run.detection = sorted(detected.values())
        run.undetected = nodes - 1 - len(detected)
    return run


def _membership(i: int, config: Config) -> Membership:
    return Membership(MemberInfo(f"n{i}", f"sim://n{i}", EPOCH_MS, 0), config)
