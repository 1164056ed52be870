"""An in-memory network of GossipProtocol nodes for tests: no sockets, virtual time.

Every message goes through the real Codec (encode -> bytes -> decode), so byte counts and
decoding checks are those of the wire. One seeded `random.Random` decides everything the
network does (which node goes first, which messages are lost) and seeds each node's own
generator, so a run is reproducible from its seed.

Driving it:
- `write()` / `delete()` call the node's local API at its wall time, log the entry returned
  and queue the node's eager-push rumors;
- `run_round()` advances virtual time and lets every node, in random order, start a round:
  each Exchange is delivered to the target's `handle()`, the Reply to the sender's
  `on_reply()`; a lost message (either way) calls the sender's `on_failure()`;
- after every delivered message the receiver's `take_rumors()` are queued; a queued Rumor
  is the push in flight to its peer until it is delivered or lost, which the sender's core
  is told (`push_ended()`, that counts and reroutes a lost one), as node/ does, and the
  pushes waiting for that peer are queued in turn; `pump()` (called after writes and
  rounds) delivers queued Rumors, and the rumors they cause, until none are left.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gossip.codec import Codec
from gossip.config import Config
from gossip.errors import PeerError
from gossip.messages import Exchange, Message, Outgoing, Reply, Rumor
from gossip.protocol import GossipProtocol
from gossip.store import JSON, Entry


def address_of(i: int) -> str:
    return f"mem://n{i:02d}"


def node_id_of(i: int) -> str:
    return f"n{i:02d}"


def entry_count(message: Message) -> int:
    if isinstance(message, Rumor):
        return len(message.items)
    return sum(len(d.entries) for d in message.delta)


@dataclass
class Traffic:
    """What crossed the network, by message type."""

    messages: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    largest: int = 0  # bytes of the largest encoded message
    most_entries: int = 0  # entries in the fullest message
    rejections: list[str] = field(default_factory=list)


class MemNet:
    def __init__(
        self,
        size: int,
        *,
        seed: int,
        config: Config | None = None,
        drop: float = 0.0,
        seeds_of: Callable[[int], Sequence[str]] | None = None,
        skews_ms: Sequence[int] | None = None,
        start_ms: int = 1_700_000_000_000,
        round_ms: int = 100,
    ) -> None:
        self.config = config or Config.for_tests()
        self.codec = Codec(self.config)
        self.rng = random.Random(seed)
        self.drop = drop
        self.now_ms = start_ms
        self.round_ms = round_ms
        self.rounds = 0
        self.traffic = Traffic()
        self.log: list[Entry] = []  # every entry returned by write() and delete()
        self._queue: deque[tuple[GossipProtocol, Outgoing]] = deque()
        seeds_of = seeds_of or (lambda i: [] if i == 0 else [address_of(0)])
        self.skews = list(skews_ms) if skews_ms is not None else [0] * size
        self.nodes: list[GossipProtocol] = []
        for i in range(size):
            node = GossipProtocol(
                self.config,
                node_id_of(i),
                address_of(i),
                random.Random(self.rng.getrandbits(64)),
                self.wall(i),
                seeds=seeds_of(i),
            )
            self.nodes.append(node)
        self.by_address = {node.membership.me.address: node for node in self.nodes}

    # -- time ------------------------------------------------------------------------------

    def wall(self, i: int) -> int:
        """Node i's wall clock: virtual time plus its skew."""
        return self.now_ms + self.skews[i]

    def _wall_of(self, node: GossipProtocol) -> int:
        return self.wall(self.nodes.index(node))

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    # -- local writes ------------------------------------------------------------------------

    def write(self, i: int, key: str, value: JSON, ttl: float | None = None) -> Entry:
        entry = self.nodes[i].write(key, value, self.wall(i), ttl=ttl)
        self.log.append(entry)
        self._queue_rumors(self.nodes[i])
        return entry

    def delete(self, i: int, key: str) -> Entry:
        entry = self.nodes[i].delete(key, self.wall(i))
        self.log.append(entry)
        self._queue_rumors(self.nodes[i])
        return entry

    # -- the wire ------------------------------------------------------------------------------

    def transmit(self, message: Message, droppable: bool = True) -> Message | None:
        """Encode, count, maybe lose, decode. None if the message was lost."""
        data = self.codec.encode(message)
        kind = type(message).__name__
        self.traffic.messages[kind] += 1
        self.traffic.bytes[kind] += len(data)
        self.traffic.largest = max(self.traffic.largest, len(data))
        self.traffic.most_entries = max(self.traffic.most_entries, entry_count(message))
        if droppable and self.drop and self.rng.random() < self.drop:
            self.traffic.dropped[kind] += 1
            return None
        return self.codec.decode(data)

    def _reject(self, sender: GossipProtocol, target: GossipProtocol, exc: PeerError) -> None:
        self.traffic.rejections.append(
            f"{target.id} rejected a message from {sender.id}: {type(exc).__name__}: {exc}"
        )

    def deliver(self, sender: GossipProtocol, out: Outgoing) -> int:
        """Deliver one outgoing message (and, for an Exchange, its Reply). Returns the
        encoded bytes of the request plus the reply."""
        target = self.by_address.get(out.address)
        size = len(self.codec.encode(out.message))
        received = self.transmit(out.message)
        if target is None or received is None:
            return size + self._failed(sender, out)
        try:
            reply = target.handle(received, self._wall_of(target))
        except PeerError as exc:
            self._reject(sender, target, exc)
            return size + self._failed(sender, out)
        self._queue_rumors(target)
        if isinstance(out.message, Rumor):
            self._push_ended(sender, out, delivered=True)
            return size
        if reply is None:
            return size
        assert isinstance(out.message, Exchange) and isinstance(reply, Reply)
        size += len(self.codec.encode(reply))
        answer = self.transmit(reply)
        if answer is None:
            sender.on_failure(out.address)
            return size
        assert isinstance(answer, Reply)
        try:
            sender.on_reply(out.address, answer, self._wall_of(sender))
        except PeerError as exc:
            self._reject(target, sender, exc)
            sender.on_failure(out.address)
            return size
        self._queue_rumors(sender)
        return size

    def _failed(self, sender: GossipProtocol, out: Outgoing) -> int:
        """What node/ does when a send fails: count it against the peer (for a push, the
        sender's core does, and passes it on to the next peer of each group)."""
        if isinstance(out.message, Rumor):
            self._push_ended(sender, out, delivered=False)
        else:
            sender.on_failure(out.address)
        return 0

    def _push_ended(self, sender: GossipProtocol, out: Outgoing, delivered: bool) -> None:
        sender.push_ended(out, delivered)
        self._queue_rumors(sender)  # what waited for that peer, and any push rerouted

    def _queue_rumors(self, node: GossipProtocol) -> None:
        self._queue.extend((node, out) for out in node.take_rumors())

    def pump(self, limit: int = 1_000_000) -> None:
        """Deliver queued rumors, and those they cause, until none are left."""
        while self._queue:
            limit -= 1
            assert limit > 0, "rumors never stop: relaying is not bounded"
            sender, out = self._queue.popleft()
            self.deliver(sender, out)

    # -- rounds --------------------------------------------------------------------------------

    def run_round(self, nodes: Iterable[int] | None = None) -> None:
        """Advance virtual time by one round and let each node (random order) run one."""
        self.advance(self.round_ms)
        self.rounds += 1
        order = list(range(len(self.nodes))) if nodes is None else list(nodes)
        self.rng.shuffle(order)
        for i in order:
            node = self.nodes[i]
            for out in node.round(self.wall(i)):
                self.deliver(node, out)
        self.pump()

    def run_until(self, done: Callable[[], bool], max_rounds: int) -> int | None:
        """Rounds until `done()` holds (0 if it already does); None if it never did."""
        for n in range(max_rounds + 1):
            if done():
                return n
            if n < max_rounds:
                self.run_round()
        return None

    # -- what the nodes hold ----------------------------------------------------------------------

    def agree(self) -> bool:
        """Every node has the same live state (same state hash)."""
        return len({node.state_hash(self.now_ms) for node in self.nodes}) == 1

    def everyone_knows_everyone(self) -> bool:
        size = len(self.nodes)
        return all(len(node.membership.members) == size - 1 for node in self.nodes)

    def lww_expectation(self, now_ms: int | None = None) -> dict[str, Entry]:
        """Live state implied by the write log: per key the entry with the greatest
        (ts, origin) among every write and delete; a delete (or an expiry by `now_ms`,
        default virtual time) leaves the key absent."""
        now = self.now_ms if now_ms is None else now_ms
        best: dict[str, Entry] = {}
        for entry in self.log:
            current = best.get(entry.key)
            if current is None or (entry.ts, entry.origin) > (current.ts, current.origin):
                best[entry.key] = entry
        return {
            k: e
            for k, e in best.items()
            if not e.deleted and (e.expires_at is None or now < e.expires_at)
        }
