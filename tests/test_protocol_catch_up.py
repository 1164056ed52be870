"""Catching up after a reset (PROTOCOL.md R7c): a node that holds nothing must be able to
take the old live entries it needs, whatever old deletes reach it first."""

from __future__ import annotations

import random

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.messages import Exchange, WriterDelta
from gossip.protocol import GossipProtocol
from gossip.store import Entry

T0 = 1_700_000_000_000


def test_a_node_catching_up_keeps_old_live_entries_after_stale_tombstones() -> None:
    """Seen on real processes: a node reset after a long absence then handled requests
    queued while it was paused, whose deltas held tombstones already past the grace
    period. Collecting them raised its horizon, and from then on R7c made it refuse the
    old live entries it still needed: it stayed empty. Such tombstones, for keys it does
    not hold, are now left out."""
    config = Config(gossip_interval=1.0, tombstone_grace=10, eager_push=False)
    writer = GossipProtocol(config, "w", "mem://w", random.Random(2), T0)
    live = writer.write("kept", 1, T0)
    gone = writer.write("deleted", 2, T0)
    tombstone = writer.delete("deleted", T0 + 1)
    later = T0 + 60_000  # both writes are far older than the grace period now
    fresh = GossipProtocol(config, "me", "mem://me", random.Random(1), later)
    origin = tombstone.origin

    def deliver(*entries: Entry) -> None:
        delta = WriterDelta(origin, Timestamp(0, 0), max(e.ts for e in entries), entries)
        fresh.handle(Exchange(writer.membership.me, {}, (), (delta,)), later)

    deliver(tombstone)
    fresh.round(later)  # collects whatever is collectable
    assert fresh.store.horizon == {}
    deliver(live, gone)
    assert fresh.read("kept", later) is not None
    assert fresh.counters.refused_old == 0
