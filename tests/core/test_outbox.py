"""The eager-push driver rules, kept by the core for every driver (docs/PROTOCOL.md, R14,
R21): one push in flight per peer; what is queued for a peer meanwhile leaves in one push
when that one ends; a push not delivered counts as a failure against its peer and goes on
to the next peer of each of its groups; a reset frees every peer, and a push sent before
it that ends later changes nothing of the new state's pushes."""

from __future__ import annotations

import random

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.messages import Outgoing, Rumor, Snapshot
from gossip.protocol import GossipProtocol
from gossip.store import Entry

T0 = 1_700_000_000_000


def cluster(size: int, fanout: int) -> list[GossipProtocol]:
    config = Config(fanout=fanout, gossip_interval=1.0)
    nodes = [GossipProtocol(config, f"n{i}", f"mem://n{i}", random.Random(i), T0) for i in range(size)]
    infos = [n.membership.me for n in nodes]
    for node in nodes:
        node.membership.merge(infos, T0)
    return nodes


def address(node: GossipProtocol) -> str:
    return node.membership.me.address


def keys(push: Outgoing) -> list[str]:
    assert isinstance(push.message, Rumor)
    return sorted(item.entry.key for item in push.message.items)


def by_address(pushes: list[Outgoing]) -> dict[str, Outgoing]:
    return {p.address: p for p in pushes}


def test_one_push_in_flight_per_peer_and_what_waits_leaves_together_when_it_ends() -> None:
    """R21: a peer with a push in flight gets no other; what is queued for it meanwhile
    leaves in one push, coalesced, when that one ends."""
    node, one, two = cluster(3, fanout=2)  # two parts: each peer is pushed to directly
    node.write("a", 1, T0 + 1)
    first = by_address(node.take_rumors())
    assert sorted(first) == [address(one), address(two)]
    node.write("b", 2, T0 + 2)
    node.write("c", 3, T0 + 3)
    node.write("b", 4, T0 + 4)
    assert not node.has_rumors() and node.take_rumors() == [], "a second push to a busy peer"

    node.push_ended(first[address(one)], delivered=True)
    assert node.has_rumors()
    (second,) = node.take_rumors()
    assert second.address == address(one)
    assert keys(second) == ["b", "c"]  # both writes in one push, "b" only at its newest
    assert isinstance(second.message, Rumor)
    assert [i.entry.value for i in second.message.items if i.entry.key == "b"] == [4]
    assert not node.has_rumors(), "the other peer's push is still in flight"

    node.push_ended(first[address(two)], delivered=True)
    (third,) = node.take_rumors()
    assert third.address == address(two) and keys(third) == ["b", "c"]
    assert node.stats.failures == 0


def test_a_push_not_delivered_is_counted_against_its_peer_and_rerouted() -> None:
    """R14: a hop that cannot be delivered passes its items to the next peer of its part."""
    node, *_ = cluster(3, fanout=1)  # one part: its head passes it on to the other peer
    node.write("a", 1, T0 + 1)
    (push,) = node.take_rumors()
    assert isinstance(push.message, Rumor)
    (group,) = push.message.groups
    (next_peer,) = group.cover

    node.push_ended(push, delivered=False)
    assert node.stats.failures == 1
    assert node.stats.by_peer_failures == {push.address: 1}
    (rerouted,) = node.take_rumors()
    assert rerouted.address == next_peer and keys(rerouted) == ["a"]
    assert isinstance(rerouted.message, Rumor) and rerouted.message.groups[0].cover == ()

    node.push_ended(rerouted, delivered=False)  # the last of its part: nowhere to go
    assert node.stats.failures == 2
    assert not node.has_rumors() and node.take_rumors() == []


def test_a_delivered_push_is_neither_counted_nor_sent_again() -> None:
    node, *_ = cluster(3, fanout=1)
    node.write("a", 1, T0 + 1)
    (push,) = node.take_rumors()
    node.push_ended(push, delivered=True)
    assert node.stats.failures == 0
    assert node.take_rumors() == []


def stale_node(size: int, fanout: int) -> list[GossipProtocol]:
    """A cluster whose first node holds an entry of a writer that the second has
    collected beyond: merging could bring a deleted key back, so meeting the second
    (`reset`) resets the first."""
    nodes = cluster(size, fanout)
    old, newer = Timestamp(T0 - 10_000, 0), Timestamp(T0 - 5_000, 0)
    nodes[0].restore(Snapshot(old, {"x#5": old}, {}, (Entry("k", 1, old, "x#5"),)), T0)
    nodes[1].restore(Snapshot(newer, {"x#5": newer}, {"x#5": newer}, ()), T0)
    return nodes


def reset(node: GossipProtocol, collector: GossipProtocol, now: int) -> None:
    out = node.replication(address(collector))
    reply = collector.handle(out.message, now)
    assert reply is not None
    node.on_reply(out.address, reply, now)
    assert node.stats.resets == 1


def test_after_a_reset_no_peer_stays_busy_and_a_push_from_before_frees_none() -> None:
    node, one, two = stale_node(3, fanout=2)  # each peer heads a part of every tree
    node.write("a", 1, T0 + 1)
    before = by_address(node.take_rumors())
    assert sorted(before) == [address(one), address(two)]
    node.write("b", 2, T0 + 2)  # waits for the busy peers

    reset(node, one, T0 + 1_000)
    assert node.take_rumors() == [], "what waited was of the state dropped"
    node.write("c", 3, T0 + 1_001)  # a write of the new life
    after = by_address(node.take_rumors())
    assert sorted(after) == [address(one), address(two)], "a peer still busy after the reset"
    assert all(keys(p) == ["c"] for p in after.values())

    node.write("d", 4, T0 + 1_002)
    for push in before.values():  # the pushes from before end now
        node.push_ended(push, delivered=True)
    assert node.take_rumors() == [], "a push from before the reset freed a peer"
    node.push_ended(after[address(two)], delivered=True)
    (next_push,) = node.take_rumors()
    assert next_push.address == address(two) and keys(next_push) == ["d"]


def test_a_push_from_before_a_reset_that_fails_is_counted_but_not_rerouted() -> None:
    node, collector, _ = stale_node(3, fanout=1)  # one part: a push carries a cover
    node.write("a", 1, T0 + 1)
    (push,) = node.take_rumors()
    assert isinstance(push.message, Rumor) and push.message.groups[0].cover

    reset(node, collector, T0 + 1_000)
    failures = node.stats.by_peer_failures.get(push.address, 0)
    node.push_ended(push, delivered=False)
    assert node.stats.by_peer_failures[push.address] == failures + 1
    assert not node.has_rumors() and node.take_rumors() == [], "rerouted what the reset dropped"
