"""Batched, coalesced eager push (docs/PROTOCOL.md, R21), over any interleaving of writes,
pushes taken while others are in flight, deliveries in any order, and lost pushes.

With nothing lost, pushes alone bring every node to the last-writer-wins result of all
writes, with every watermark where the writer's is (no entry skipped, nothing left
waiting on a gap); a push never carries two entries of one writer for one key, nor an
entry for a key older than one already pushed to that peer. With losses, the exchanges
repair the rest; a push rerouted past a dead peer may then bring its next peer an entry
older than one it was already sent (merging ignores it), so only the first rule holds."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.messages import Outgoing, Rumor, RumorItem
from gossip.protocol import GossipProtocol
from gossip.push import coalesce
from gossip.store import Entry

T0 = 1_700_000_000_000
KEYS = ["a", "b", "c"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(KEYS)),
        st.tuples(st.just("take"), st.integers(0, 2)),
        st.tuples(st.just("deliver"), st.integers(0, 50)),
        st.tuples(st.just("lose"), st.integers(0, 50)),
    ),
    max_size=60,
)


class Cluster:
    def __init__(self, size: int, fanout: int, lossy: bool = False) -> None:
        self.lossy = lossy
        self.config = Config(fanout=fanout, gossip_interval=1.0)
        self.codec = Codec(self.config)
        self.nodes = [GossipProtocol(self.config, f"n{i}", f"mem://n{i}", random.Random(i), T0)
                      for i in range(size)]
        self.by_address = {n.membership.me.address: n for n in self.nodes}
        infos = [n.membership.me for n in self.nodes]
        for node in self.nodes:
            node.membership.merge(infos, T0)
        self.now = T0
        self.in_flight: list[tuple[GossipProtocol, Outgoing]] = []
        self.pushed: dict[tuple[str, str, str], Timestamp] = {}  # (to, writer, key) -> newest pushed
        self.writes: list[Entry] = []

    def write(self, i: int, key: str) -> None:
        self.now += 1
        self.writes.append(self.nodes[i].write(key, len(self.writes), self.now))

    def take(self, i: int) -> None:
        node = self.nodes[i]
        for out in node.take_rumors():
            self.check_push(out)
            self.in_flight.append((node, out))

    def check_push(self, out: Outgoing) -> None:
        assert isinstance(out.message, Rumor)
        for group in out.message.groups:
            seen: set[tuple[str, str]] = set()
            for item in group.items:
                e = item.entry
                assert (e.origin, e.key) not in seen, f"two entries of {e.origin} for {e.key} in one push"
                seen.add((e.origin, e.key))
                last = self.pushed.get((out.address, e.origin, e.key))
                if last is not None and not self.lossy:
                    assert last < e.ts, f"{e.key}: an older entry pushed after a newer one"
                self.pushed[(out.address, e.origin, e.key)] = e.ts if last is None else max(last, e.ts)

    def deliver(self, index: int, lost: bool = False) -> None:
        if not self.in_flight:
            return
        sender, out = self.in_flight.pop(index % len(self.in_flight))
        if not lost:
            message = self.codec.decode(self.codec.encode(out.message))
            self.by_address[out.address].handle(message, self.now)
        sender.push_ended(out, delivered=not lost)

    def drain(self) -> None:
        """Deliver every push, and those they cause, until none is left."""
        while True:
            for i in range(len(self.nodes)):
                self.take(i)
            if not self.in_flight:
                return
            while self.in_flight:
                self.deliver(0)

    def expectation(self) -> dict[str, Entry]:
        best: dict[str, Entry] = {}
        for e in self.writes:
            if e.key not in best or e.wins_over(best[e.key]):
                best[e.key] = e
        return best


@settings(max_examples=300, deadline=None)
@given(size=st.integers(2, 4), fanout=st.integers(1, 2), ops=operations)
def test_pushes_alone_bring_every_node_to_the_result_when_nothing_is_lost(
    size: int, fanout: int, ops: list[tuple[str, int] | tuple[str, int, str]]
) -> None:
    """R14: pushes down the trees reach every member; R15: every held push is applied once the
    writes before it arrive, so none is left waiting."""
    c = Cluster(size, fanout)
    for op in ops:
        if op[0] == "write":
            c.write(op[1] % size, op[2])
        elif op[0] == "take":
            c.take(op[1] % size)
        elif op[0] == "deliver":
            c.deliver(op[1])
    c.drain()
    expected = c.expectation()
    for node in c.nodes:
        assert {k: node.store.get(k) for k in expected} == expected
        for writer in {e.origin for e in c.writes}:
            own = c.by_address["mem://" + writer.split("#")[0]]
            assert node.store.watermark(writer) == own.store.watermark(writer)
        assert not node.intake.pending, "a push is still waiting for an earlier one"


@settings(max_examples=200, deadline=None)
@given(size=st.integers(2, 4), fanout=st.integers(1, 2), ops=operations)
def test_with_lost_pushes_the_exchanges_repair_the_rest(
    size: int, fanout: int, ops: list[tuple[str, int] | tuple[str, int, str]]
) -> None:
    """R15: a push that runs ahead of a lost one is held, never applied over the gap; the
    exchanges bring the rest."""
    c = Cluster(size, fanout, lossy=True)
    for op in ops:
        if op[0] == "write":
            c.write(op[1] % size, op[2])
        elif op[0] == "take":
            c.take(op[1] % size)
        elif op[0] in ("deliver", "lose"):
            c.deliver(op[1], lost=op[0] == "lose")
    c.drain()
    for _ in range(4 * size):  # rounds of exchanges
        c.now += 1000
        for node in c.nodes:
            for out in node.round(c.now):
                reply = c.by_address[out.address].handle(c.codec.decode(c.codec.encode(out.message)), c.now)
                if reply is not None:
                    node.on_reply(out.address, c.codec.decode(c.codec.encode(reply)), c.now)  # type: ignore[arg-type]
        c.drain()
    expected = c.expectation()
    for node in c.nodes:
        assert {k: node.store.get(k) for k in expected} == expected


def item(key: str, wall: int, prev: int, origin: str = "w") -> RumorItem:
    return RumorItem(Entry(key, wall, Timestamp(wall, 0), origin), Timestamp(prev, 0))


def test_coalescing_keeps_the_newest_per_key_and_chains_around_the_dropped() -> None:
    """R21: a batch keeps each key's newest item and chains the prevs around those dropped."""
    batch = [item("a", 1, 0), item("b", 2, 1), item("a", 3, 2), item("a", 4, 3, origin="v")]
    assert coalesce(batch) == [item("b", 2, 0), item("a", 3, 2), item("a", 4, 3, origin="v")]
