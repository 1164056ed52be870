"""A discrete-event simulator that drives the real gossip core in virtual time.

Every node is a real GossipProtocol with its own RNG (derived from one seed) and its own
clock offset; every message goes through the real Codec. This module only decides *when*
things happen and *whether* a message arrives; what a node does is the core's business.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.errors import PeerError
from gossip.messages import Outgoing, Reply
from gossip.protocol import GossipProtocol
from gossip.store import JSON, Entry
from simulations.network import Network, NetworkModel

US = 1_000_000  # virtual time is kept in integer microseconds, so it never drifts
EPOCH_MS = 1_700_000_000_000  # node clocks read a realistic wall time at virtual time 0


def to_us(seconds: float) -> int:
    return round(seconds * US)


@dataclass
class SimNode:
    id: str
    address: str
    protocol: GossipProtocol
    offset_ms: int = 0  # this node's clock = virtual time + offset (clock skew)
    up: bool = True
    incarnation: int = 0  # bumped on crash: events of an older life are dropped


@dataclass(frozen=True)
class Ack:
    """A write the simulated client saw acknowledged."""

    key: str
    value: JSON
    ts: Timestamp
    origin: str
    deleted: bool
    at_us: int
    expires_at: int | None = None


KINDS = ("exchange", "reply", "rumor")


@dataclass
class Traffic:
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    largest: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))  # bytes of the largest
    lost: int = 0
    rejected: int = 0
    failures: int = 0

    def count(self, kind: str, size: int) -> None:
        self.messages[kind] += 1
        self.bytes[kind] += size
        if size > self.largest[kind]:
            self.largest[kind] = size

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


Watcher = Callable[[SimNode], None]


class Simulation:
    """Nodes, a heap of timed events and a modelled network.

    synchronous=True is the textbook model: every node starts its round at the same
    instant each interval and all messages land within the round (fixed latency, and a
    node answers the requests that carry no news before those that do, so nothing
    learned in a round is passed on in the same round). pull=False strips the delta off
    every reply, which turns the real push-pull exchange into push-only.
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
    ) -> None:
        self.config = config
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
        self.now_us = 0
        self._heap: list[tuple[int, int, int, Callable[[], None]]] = []
        self._seq = 0
        self.traffic = Traffic()
        self.acks: list[Ack] = []
        self.watchers: list[Watcher] = []
        # Messages (exchanges and rumors) sent to each address, to check who is a target.
        self.sent_to: Counter[str] = Counter()
        self.tracing = trace
        self.trace: deque[str] = deque(maxlen=trace_limit)
        self._timeout_us = to_us(config.request_timeout)

    # -- time and events ----------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the start."""
        return self.now_us / US

    def node_ms(self, node: SimNode) -> int:
        """The node's own wall clock, in ms: virtual time plus its offset."""
        return EPOCH_MS + self.now_us // 1000 + node.offset_ms

    def at(self, when_us: int, action: Callable[[], None], priority: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(when_us, self.now_us), priority, self._seq, action))

    def after(self, seconds: float, action: Callable[[], None], priority: int = 0) -> None:
        self.at(self.now_us + to_us(seconds), action, priority)

    def run_until(self, seconds: float) -> None:
        """Process every event due up to `seconds` of virtual time."""
        end = to_us(seconds)
        heap = self._heap
        while heap and heap[0][0] <= end:
            when, _, _, action = heapq.heappop(heap)
            self.now_us = when
            action()
        self.now_us = max(self.now_us, end)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def wait_for(
        self, done: Callable[[], bool], timeout: float, step: float = 0.05
    ) -> float | None:
        """Run until `done()` holds (checked every `step` virtual seconds); the virtual
        seconds it took, or None if `timeout` passed first."""
        start = self.now
        while not done():
            if self.now - start >= timeout:
                return None
            self.run_for(step)
        return self.now - start

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
        if self.synchronous:
            return  # the ticker starts every round
        life = node.incarnation
        self.after(node.protocol.first_delay(), lambda: self._round(node, life))

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        node.up = False
        node.incarnation += 1
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
            self._send_exchange(node, out)

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
        self._changed(node)
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
            self._send_exchange(node, out)

    # -- messages -------------------------------------------------------------------------

    def _route(self, src: SimNode, address: str, reply: bool = False) -> SimNode | None:
        """The destination if the message gets through the network, else None."""
        dst = self._by_address.get(address)
        if dst is None or not self.net.connected(src.address, address) or self.net.lost(reply):
            self.traffic.lost += 1
            return None
        return dst

    def _send_exchange(self, src: SimNode, out: Outgoing) -> None:
        data = self.codec.encode(out.message)
        self.traffic.count("exchange", len(data))
        self.sent_to[out.address] += 1
        life, sent = src.incarnation, self.now_us
        self.note(f"{src.id} -> {out.address} exchange {len(data)}B")
        dst = self._route(src, out.address)
        if dst is None:
            self._fail_at(sent + self._timeout_us, src, life, out.address)
            return
        # Synchronous mode: requests without news are answered first (see the class doc).
        priority = 1 if self.synchronous and out.message.delta else 0  # type: ignore[union-attr]
        copies = 2 if self.net.duplicated() else 1
        for copy in range(copies):
            answer = copy == 0
            self.after(
                self.net.delay(),
                partial(self._deliver_exchange, src, life, dst, data, sent, answer),
                priority,
            )

    def _deliver_exchange(self, src: SimNode, life: int, dst: SimNode, data: bytes,
                          sent: int, answer: bool) -> None:
        if not dst.up:  # connection refused, noticed after a round trip
            if answer:
                self._fail_at(self.now_us + to_us(self.net.delay()), src, life, dst.address)
            return
        reply = self._handle(dst, data)
        if not answer:
            return  # a duplicated request: its answer goes nowhere
        if not isinstance(reply, Reply):
            self._fail_at(self.now_us + to_us(self.net.delay()), src, life, dst.address)
            return
        if not self.pull:
            reply = dataclasses.replace(reply, delta=())
        rdata = self.codec.encode(reply)
        self.traffic.count("reply", len(rdata))
        back = self._route(dst, src.address, reply=True)
        arrive = self.now_us + to_us(self.net.delay())
        if back is None or arrive - sent > self._timeout_us:
            self._fail_at(sent + self._timeout_us, src, life, dst.address)
            return
        self.at(arrive, lambda: self._deliver_reply(src, life, dst.address, rdata))

    def _deliver_reply(self, src: SimNode, life: int, address: str, data: bytes) -> None:
        if not src.up or src.incarnation != life:
            return
        try:
            src.protocol.on_reply(address, self._decode_reply(data), self.node_ms(src))
        except PeerError as exc:
            self.traffic.rejected += 1
            self.note(f"{src.id} rejected reply from {address}: {exc}")
            src.protocol.on_failure(address)
            return
        self._changed(src)

    def _handle(self, dst: SimNode, data: bytes) -> Reply | None:
        try:
            reply = dst.protocol.handle(self.codec.decode(data), self.node_ms(dst))
        except PeerError as exc:
            self.traffic.rejected += 1
            self.note(f"{dst.id} rejected a message: {exc}")
            return None
        self._changed(dst)
        return reply

    def _decode_reply(self, data: bytes) -> Reply:
        message = self.codec.decode(data)
        if not isinstance(message, Reply):
            raise TypeError(f"expected a reply, got {type(message).__name__}")
        return message

    def _fail_at(self, when: int, src: SimNode, life: int, address: str) -> None:
        def fail() -> None:
            if src.up and src.incarnation == life:
                self.traffic.failures += 1
                self.note(f"{src.id}: exchange with {address} failed")
                src.protocol.on_failure(address)

        self.at(when, fail)

    def _send_rumors(self, src: SimNode) -> None:
        """Pushes for the peers with none in flight, as node/ sends them (R21)."""
        for out in src.protocol.take_rumors():
            self._push(src, out)

    def _push(self, src: SimNode, out: Outgoing) -> None:
        """An eager push. It ends when its answer is back (a round trip), or fails (lost:
        after the request timeout; refused: after a round trip); the core is told
        (push_ended), as the node tells it, and what waits then leaves."""
        data = self.codec.encode(out.message)
        self.traffic.count("rumor", len(data))
        self.sent_to[out.address] += 1
        self.note(f"{src.id} -> {out.address} rumor {len(data)}B")
        life, sent = src.incarnation, self.now_us
        dst = self._route(src, out.address)
        if dst is None:
            self.after(self.config.request_timeout, lambda: self._push_failed(src, life, out))
            return
        for copy in range(2 if self.net.duplicated() else 1):
            answer = copy == 0
            deliver = partial(self._deliver_rumor, src, life, dst, data, out, sent, answer)
            self.after(self.net.delay(), deliver)

    def _deliver_rumor(self, src: SimNode, life: int, dst: SimNode, data: bytes, out: Outgoing,
                       sent: int, answer: bool) -> None:
        if not dst.up:
            if answer:
                self.after(self.net.delay(), lambda: self._push_failed(src, life, out))
            return
        self._handle(dst, data)
        if not answer:
            return
        back = self._route(dst, src.address, reply=True)
        arrive = self.now_us + to_us(self.net.delay())
        if back is None or arrive - sent > self._timeout_us:
            self.at(sent + self._timeout_us, lambda: self._push_failed(src, life, out))
        else:
            self.at(arrive, lambda: self._push_done(src, life, out))

    def _push_done(self, src: SimNode, life: int, out: Outgoing) -> None:
        if src.incarnation != life:
            return
        src.protocol.push_ended(out, delivered=True)
        if src.up and src.protocol.has_rumors():
            self._send_rumors(src)

    def _push_failed(self, src: SimNode, life: int, out: Outgoing) -> None:
        if not src.up or src.incarnation != life:
            return
        self.traffic.failures += 1
        src.protocol.push_ended(out, delivered=False)
        if src.protocol.has_rumors():
            self._send_rumors(src)

    def _changed(self, node: SimNode) -> None:
        """After a node may have learned something: tell the watchers, relay rumors."""
        for watch in self.watchers:
            watch(node)
        if node.protocol.has_rumors():
            self._send_rumors(node)

    # -- reading the cluster ----------------------------------------------------------------

    def holds(self, node: SimNode, key: str, target: Entry) -> bool:
        """Whether the node holds `target` or something that supersedes it."""
        entry = node.protocol.store.get(key)
        return entry is not None and (entry == target or entry.wins_over(target))

    def converged(self) -> bool:
        """Every up node has the same live state."""
        hashes = {n.protocol.state_hash(self.node_ms(n))[0] for n in self.up_nodes()}
        return len(hashes) <= 1

    def lost_acks(self) -> list[tuple[str, Ack]]:
        """(node, write) for each acknowledged write an up node neither holds nor holds
        something newer for: a write superseded by a later timestamp is not lost, nor
        is one whose key was last deleted or expired, and collected since."""
        newest: dict[str, Ack] = {}
        for ack in self.acks:
            if ack.key not in newest or (ack.ts, ack.origin) > (newest[ack.key].ts, newest[ack.key].origin):
                newest[ack.key] = ack
        lost = []
        for node in self.up_nodes():
            for ack in self.acks:
                entry = node.protocol.store.get(ack.key)
                last = newest[ack.key]
                gone = last.deleted or (last.expires_at is not None and last.expires_at <= self.node_ms(node))
                if entry is None and gone:
                    continue  # deleted or expired last, and collected since
                if entry is None or (entry.ts, entry.origin) < (ack.ts, ack.origin):
                    lost.append((node.id, ack))
        return lost
