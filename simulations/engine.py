"""A discrete-event simulator that drives the real gossip core in virtual time.

Every node is a real GossipProtocol with its own RNG (derived from one seed) and its own
clock offset; every message goes through the real Codec. This module only decides *when*
things happen and *whether* a message arrives; what a node does is the core's business.
Here: the nodes and their lives (add, crash, restart, leave), the network's cuts, the
client API, the rounds, and what the cluster reads; the events run on a Timeline
(simulations/timeline.py), and messages travel by the Delivery (simulations/delivery.py),
direct probes' (R23) by the ProbeDelivery (simulations/probe_delivery.py). The nodes'
CPU time is modelled only if a CpuModel is given (simulations/cpu.py).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable

from gossip.codec import Codec
from gossip.config import Config
from gossip.protocol import GossipProtocol
from gossip.store import JSON, Entry
from simulations.acks import Ack, holds, lost_acks
from simulations.cpu import CpuModel, Cpus
from simulations.delivery import Delivery, Traffic
from simulations.network import Network, NetworkModel
from simulations.probe_delivery import ProbeDelivery
from simulations.simnode import SimNode
from simulations.timeline import Timeline, to_us

EPOCH_MS = 1_700_000_000_000  # node clocks read a realistic wall time at virtual time 0

Watcher = Callable[[SimNode], None]


class Simulation:
    """Nodes, a heap of timed events and a modelled network.

    synchronous=True is the textbook model: every node starts its round at the same
    instant each interval and all messages land within the round (fixed latency, and a
    node answers the requests that carry no news before those that do, so nothing
    learned in a round is passed on in the same round). pull=False strips the delta off
    every reply, which turns the real push-pull exchange into push-only. `cpu`: the
    nodes' CPU time (simulations/cpu.py); none by default, messages are handled on arrival.
    """

    def __init__(
        self,
        config: Config,
        network: NetworkModel | None = None,
        seed: int | str = 0,
        *,
        synchronous: bool = False,
        pull: bool = True,
        trace: bool = False,
        trace_limit: int = 2000,
        rounds: bool = True,
        cpu: CpuModel | None = None,
    ) -> None:
        self.config = config
        # rounds=False runs no gossip rounds (probes alone, R23: for detection runs too large
        # to gossip in full; phi then sees no heartbeats, so such runs turn it off).
        self.rounds = rounds
        self.seed = seed
        self.codec = Codec(config)
        model = network or NetworkModel()
        if synchronous:
            model = dataclasses.replace(model, latency_tail=0.0, duplicate=0.0)
        self.net = Network(model, random.Random(f"{seed}:network"))
        self.synchronous = synchronous
        self.pull = pull
        self.nodes: dict[str, SimNode] = {}
        self._by_address: dict[str, SimNode] = {}
        self.events = Timeline()
        self.cpus = Cpus(cpu or CpuModel(), self.events)
        self.traffic = Traffic()
        self.acks: list[Ack] = []
        self.watchers: list[Watcher] = []
        # Messages (exchanges and rumors) sent to each address, to check who is a target.
        self.sent_to: Counter[str] = Counter()
        self.tracing = trace
        self.trace: deque[str] = deque(maxlen=trace_limit)
        self.delivery = Delivery(
            self.events, self.net, self.codec, self._by_address, node_ms=self.node_ms,
            changed=self.changed, note=self.note, request_timeout=config.request_timeout,
            synchronous=synchronous, pull=pull, traffic=self.traffic, sent_to=self.sent_to, cpus=self.cpus,
        )
        self.probing = ProbeDelivery(self.events, self.net, self.codec, self.delivery.route,
                                     node_ms=self.node_ms, changed=self.changed, note=self.note,
                                     traffic=self.traffic)

    # -- time: the timeline's ------------------------------------------------------------

    @property
    def now_us(self) -> int:
        return self.events.now_us

    @now_us.setter
    def now_us(self, value: int) -> None:
        self.events.now_us = value

    @property
    def now(self) -> float:
        """Virtual seconds since the start."""
        return self.events.now

    def node_ms(self, node: SimNode) -> int:
        """The node's own wall clock, in ms: virtual time plus its offset."""
        return EPOCH_MS + self.events.now_us // 1000 + node.offset_ms

    def at(self, when_us: int, action: Callable[[], None], priority: int = 0) -> None:
        self.events.at(when_us, action, priority)

    def after(self, seconds: float, action: Callable[[], None], priority: int = 0) -> None:
        self.events.after(seconds, action, priority)

    def run_until(self, seconds: float) -> None:
        """Process every event due up to `seconds` of virtual time."""
        self.events.run_until(seconds)

    def run_for(self, seconds: float) -> None:
        self.events.run_for(seconds)

    def wait_for(self, done: Callable[[], bool], timeout: float, step: float = 0.05) -> float | None:
        """Run until `done()` holds (checked every `step` virtual seconds); the virtual
        seconds it took, or None if `timeout` passed first."""
        return self.events.wait_for(done, timeout, step)

    def note(self, text: str) -> None:
        if self.tracing:
            self.trace.append(f"{self.now:10.4f}s  {text}")

    # -- nodes --------------------------------------------------------------------------

    def _protocol(self, node_id: str, address: str, incarnation: int, now_ms: int,
                  seeds: Iterable[str]) -> GossipProtocol:
        rng = random.Random(f"{self.seed}:{node_id}:{incarnation}")
        return GossipProtocol(self.config, node_id, address, rng, now_ms, seeds)

    def add_node(self, node_id: str | None = None, *, offset_ms: int = 0,
                 seeds: Iterable[str] = ()) -> SimNode:
        node_id = node_id or f"n{len(self.nodes)}"
        if node_id in self.nodes:
            raise ValueError(f"node {node_id!r} exists already")
        address = f"sim://{node_id}"
        now_ms = EPOCH_MS + self.now_us // 1000 + offset_ms
        seed_addresses = [self.nodes[s].address if s in self.nodes else s for s in seeds]
        protocol = self._protocol(node_id, address, 0, now_ms, seed_addresses)
        node = SimNode(node_id, address, protocol, offset_ms)
        self.nodes[node_id] = node
        self._by_address[address] = node
        self.note(f"add {node_id} offset={offset_ms}ms seeds={list(seeds)}")
        self._start(node)
        return node

    def add_nodes(self, count: int, **kwargs: object) -> list[SimNode]:
        return [self.add_node(**kwargs) for _ in range(count)]  # type: ignore[arg-type]

    def introduce_some(self, count: int) -> None:
        """Tell every node about `count` random others (a sparse start, for very large
        clusters where a full member table per node would need N^2 memory); gossip's
        member views spread the rest."""
        infos = [n.protocol.membership.me for n in self.nodes.values()]
        rng = random.Random(f"{self.seed}:introduce")
        for node in self.nodes.values():
            node.protocol.membership.merge(rng.sample(infos, min(count, len(infos))), self.node_ms(node))

    def introduce_all(self) -> None:
        """Tell every node about every other (a cluster that has long found itself),
        through the core's own membership merge."""
        infos = [n.protocol.membership.me for n in self.nodes.values()]
        for node in self.nodes.values():
            node.protocol.membership.merge(infos, self.node_ms(node))

    def _start(self, node: SimNode) -> None:
        self.probing.schedule(node)
        if self.synchronous or not self.rounds:
            return  # the ticker starts every round (or there are none)
        life = node.incarnation
        self.after(node.protocol.first_delay(), lambda: self._round(node, life))

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        node.up = False
        node.incarnation += 1
        node.probe_at = None
        self.cpus.forget(node.address)
        # The ends of its pushes in flight are dropped with the rest of its old life's
        # events: free their peers for a restart that keeps this protocol.
        node.protocol.outbox.forget_in_flight()
        self.note(f"crash {node_id}")

    def save(self, node_id: str) -> bytes:
        """The node's snapshot file as `--data-dir` would write it now."""
        return self.codec.encode_snapshot(self.nodes[node_id].protocol.snapshot())

    def restart(self, node_id: str, *, keep_state: bool, seeds: Iterable[str] = (),
                new_life: bool = False, snapshot: bytes | None = None) -> None:
        """Bring a crashed node back: as it was (keep_state, a paused process), empty
        (knowing only `seeds`, with a new generation), or with its state and a new
        generation (keep_state and new_life: a process restarted from its data
        directory: `snapshot`, from save(), or else one taken as it stopped)."""
        node = self.nodes[node_id]
        if node.up:
            raise ValueError(f"node {node_id!r} is not down")
        if not keep_state or new_life:
            old = node.protocol
            addresses = [self.nodes[s].address for s in seeds]
            node.protocol = self._protocol(
                node.id, node.address, node.incarnation, self.node_ms(node), addresses
            )
            if keep_state:
                saved = self.codec.encode_snapshot(old.snapshot()) if snapshot is None else snapshot
                node.protocol.restore(self.codec.decode_snapshot(saved), self.node_ms(node))
        node.up = True
        self.note(f"restart {node_id} keep_state={keep_state} new_life={new_life}")
        self._start(node)

    def leave(self, node_id: str) -> None:
        """The node says goodbye (GossipProtocol.leave) to every live peer and stops its
        rounds; it still hears the replies until it is `crash`ed (stopped)."""
        node = self._live(node_id)
        self.note(f"leave {node_id}")
        # A leaving node runs no more rounds: the core's round() would announce it alive
        # again (Membership.beat() drops the left flag). A new life ends the round timer;
        # the goodbyes are sent in it, so their replies still arrive.
        node.incarnation += 1
        for out in node.protocol.leave():
            self.delivery.send_exchange(node, out)

    def status(self, observer: str, member: str) -> str | None:
        """How `observer` sees `member` (alive / suspect / dead / left), None if unknown."""
        known = self.nodes[observer].protocol.membership.members.get(member)
        return None if known is None else known.status

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    # -- the network's edges --------------------------------------------------------------

    def cut(self, name: str, node_ids: Iterable[str]) -> None:
        group = frozenset(self.nodes[i].address for i in node_ids)
        self.net.cut(name, group)
        self.note(f"cut {name}: {sorted(node_ids)}")

    def block(self, name: str, src_ids: Iterable[str], dst_ids: Iterable[str]) -> None:
        """A one-way cut: messages from `src_ids` to `dst_ids` are lost (both requests
        and replies travelling that way)."""
        src, dst = sorted(src_ids), sorted(dst_ids)
        self.net.block(name, frozenset(self.nodes[i].address for i in src),
                       frozenset(self.nodes[i].address for i in dst))
        self.note(f"block {name}: {src} -/-> {dst}")

    def heal(self, name: str) -> None:
        self.net.heal(name)
        self.note(f"heal {name}")

    # -- the local API ------------------------------------------------------------------

    def write(self, node_id: str, key: str, value: JSON, ttl: float | None = None) -> Entry:
        node = self._live(node_id)
        entry = node.protocol.write(key, value, self.node_ms(node), ttl)
        return self._acknowledge(node, entry)

    def delete(self, node_id: str, key: str) -> Entry:
        node = self._live(node_id)
        return self._acknowledge(node, node.protocol.delete(key, self.node_ms(node)))

    def _acknowledge(self, node: SimNode, entry: Entry) -> Entry:
        self.acks.append(Ack(entry.key, entry.value, entry.ts, entry.origin, entry.deleted,
                             self.now_us, entry.expires_at))
        self.note(f"write {node.id}: {entry.key}={entry.value!r} ts={tuple(entry.ts)}")
        self.changed(node)
        return entry

    def _live(self, node_id: str) -> SimNode:
        node = self.nodes[node_id]
        if not node.up:
            raise ValueError(f"node {node_id!r} is down")
        return node

    # -- rounds ---------------------------------------------------------------------------

    def start_ticker(self, first: float = 0.0) -> None:
        """Synchronous mode: every up node starts a round at first + i * interval."""
        interval = to_us(self.config.gossip_interval)

        def tick() -> None:
            for node in self.nodes.values():
                if node.up:
                    self._send_round(node)
            self.at(self.now_us + interval, tick)

        self.at(to_us(first), tick)

    def _round(self, node: SimNode, life: int) -> None:
        if not node.up or node.incarnation != life:
            return
        self._send_round(node)
        self.after(node.protocol.next_delay(), lambda: self._round(node, life))

    def _send_round(self, node: SimNode) -> None:
        outgoing = node.protocol.round(self.node_ms(node))
        for watch in self.watchers:  # a round re-judges members and collects tombstones
            watch(node)
        for out in outgoing:
            self.delivery.send_exchange(node, out)

    def changed(self, node: SimNode) -> None:
        """After a node may have learned something: tell the watchers, relay rumors."""
        for watch in self.watchers:
            watch(node)
        if node.protocol.has_rumors():
            self.delivery.send_rumors(node)

    # -- reading the cluster ----------------------------------------------------------------

    def holds(self, node: SimNode, key: str, target: Entry) -> bool:
        """Whether the node holds `target` or something that supersedes it."""
        return holds(node.protocol.store.get(key), target)

    def converged(self) -> bool:
        """Every up node has the same live state."""
        hashes = {n.protocol.state_hash(self.node_ms(n))[0] for n in self.up_nodes()}
        return len(hashes) <= 1

    def lost_acks(self) -> list[tuple[str, Ack]]:
        """(node, write) for each acknowledged write an up node neither holds nor holds
        something newer for (simulations/acks.py)."""
        return lost_acks(self.acks, self.up_nodes(), self.node_ms)
