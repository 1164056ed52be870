"""Where a node stands in its life (gossip/standing.py), driven through the protocol: a
reset drops the state and starts a new life that catches up from the peer that gave the
evidence (R7c, R7d); a restored snapshot continues the life that saved it, as a member
(R19); one with nothing in it starts like any new life."""

from __future__ import annotations

import random

from gossip.catchup import Phase
from gossip.clock import Timestamp
from gossip.config import Config
from gossip.messages import HORIZON, Behind, Exchange
from gossip.protocol import GossipProtocol
from gossip.store import writer_id

T0 = 1_700_000_000_000
SEED = "mem://seed"


def node(seeds: tuple[str, ...] = (SEED,), generation: int = 7) -> GossipProtocol:
    config = Config(phi_suspect=1e9, phi_dead=1e9, eager_push=False)
    return GossipProtocol(config, "me", "mem://me", random.Random(3), T0, seeds=seeds, generation=generation)


def test_a_reset_drops_the_state_and_catches_up_from_the_peer_as_a_new_life() -> None:
    """R7c: a peer's evidence that our state predates its collections, checked against
    our state, resets us; R7d: we then catch up from that peer alone."""
    p = node(seeds=())
    assert p.phase is Phase.MEMBER  # no seeds: it founds a cluster
    p.write("k", 1, T0)
    writer_before = p.writer
    evidence = Behind(HORIZON, "other~1", Timestamp(T0 + 50, 0))
    peer = GossipProtocol(Config(phi_suspect=1e9, phi_dead=1e9), "peer", "mem://peer", random.Random(4), T0)
    exchange = peer.composer.summary(Exchange, behind=evidence, to="mem://me")
    p.handle(exchange, T0 + 100)
    assert p.store.get("k") is None and p.stats.resets == 1
    assert p.writer != writer_before and p.generation > 7
    assert p.phase is Phase.FOLLOWING and p.catchup is not None and p.catchup.source == "mem://peer"
    assert p.last_reset is not None and p.last_reset.evidence == evidence and p.last_reset.peer == "mem://peer"
    assert [o.address for o in p.round(T0 + 1_000)] == ["mem://peer"]  # the source alone


def test_a_restored_state_continues_the_life_that_saved_it_as_a_member() -> None:
    """R19: a new life above the one that saved, whose state ours continues; it does not
    catch up, peers judge it."""
    first = node(generation=7)
    first.write("k", "kept", T0)
    snap = first.snapshot()
    again = node(generation=7)  # the same generation number: the restore must go above it
    again.restore(snap, T0 + 10)
    assert again.generation > 7 and again.lives.lineage == 7
    assert again.phase is Phase.MEMBER
    entry = again.read("k", T0 + 10)
    assert entry is not None and entry.value == "kept" and entry.origin == writer_id("me", 7)


def test_an_empty_snapshot_starts_a_life_like_any_other() -> None:
    empty = node(seeds=()).snapshot()
    p = node()
    p.restore(empty, T0)
    assert p.phase is Phase.SEEKING and p.lives.lineage == p.generation
