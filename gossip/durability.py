"""A node's state saved and restored (R19): what a snapshot holds, and what restoring one
brings back. The protocol decides the life that follows (gossip/protocol.py, `restore`)."""

from __future__ import annotations

from gossip.clock import HybridClock
from gossip.lives import Lives, writer_life
from gossip.membership import Membership
from gossip.messages import Snapshot
from gossip.store import Store


def snapshot(store: Store, lives: Lives, membership: Membership, clock: HybridClock) -> Snapshot:
    members = tuple(m.info for m in membership.members.values())
    return Snapshot(clock.last, dict(store.watermarks), dict(store.horizon), tuple(store.entries()),
                    dict(store.retired), dict(lives.forgotten), lives.generation, lives.lineage, members,
                    dict(store.forgotten_writers))


def holds_state(snap: Snapshot) -> bool:
    """Whether the snapshot holds any state (else restoring it starts a life like any other)."""
    return bool(snap.entries or snap.watermarks or snap.retired)


def load(
    snap: Snapshot, store: Store, lives: Lives, membership: Membership, clock: HybridClock, now_ms: int
) -> tuple[int, int]:
    """Take in a snapshot's entries, what it held completely, what it had collected and
    retired, whom it knew, the lives and writers it forgot, and a clock above all it ever wrote.
    Returns the generation of the life that saved it (the newest of ours it shows) and
    the oldest of ours it shows (1 if none)."""
    for entry in snap.entries:
        store.merge(entry)
    store.watermarks.update(snap.watermarks)
    for writer, mark in snap.horizon.items():
        store.raise_horizon(writer, mark)
    for writer, end in snap.retired.items():
        store.retired.set(writer, end)
    for node, life in snap.forgotten.items():
        lives.remember_forgotten(node, life)
    for writer, horizon in snap.forgotten_writers.items():
        store.remember_forgotten_writer(writer, horizon)
    membership.merge(list(snap.members), now_ms)
    if snap.clock > clock.last:
        clock.last = snap.clock
    found = [writer_life(w) for w in (*snap.watermarks, *snap.retired)]
    ours = [life[1] for life in found if life is not None and life[0] == lives.id]
    return max([snap.generation, *ours]), min(ours, default=1)
