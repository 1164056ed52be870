"""Whether a node's state predates collections another node made (docs/PROTOCOL.md,
R7c): then its copies could bring deleted keys back, so it is reset, not merged. Each
test returns the evidence (a `Behind`), which travels to the node judged, and which that
node checks against its own state before it resets. Pure functions of a store and what a
peer's summary shows; the forgotten-life test, which needs the membership, is the
protocol's."""

from __future__ import annotations

from collections.abc import Mapping

from gossip.clock import ZERO, Timestamp
from gossip.messages import FORGOTTEN, HORIZON, Behind, Summary
from gossip.retired import Holdings
from gossip.store import Store


def reached(store: Store, writer: str) -> Timestamp:
    """How far our history of `writer` goes, held or collected."""
    return max(store.coverage(writer), store.horizon.get(writer, ZERO))


def against_peer(
    store: Store, peer: Holdings, horizon: Mapping[str, Timestamp], collected: Timestamp
) -> tuple[Behind | None, bool]:
    """Whether the peer's state predates our collections: for some writer we collected
    up to `mark`, it holds (or collected) less. A writer it holds none of at all is
    evidence only if it knows of no collection that recent (`collected`, the newest it
    has made, taken on, or passed by forgetting a writer: a node forgets a writer, R20,
    only with all of it behind it). Returns the evidence, if any, and whether its
    summary told enough to decide (it may not tell how far it holds a writer of a
    retired bucket that differs from ours)."""
    decided = True
    for writer, mark in store.horizon.items():
        held = peer.mark(writer)
        if held is None:
            decided = False
            continue
        if max(held, horizon.get(writer, ZERO)) >= mark:
            continue
        if held == ZERO and writer not in horizon and collected >= mark:
            continue
        return Behind(HORIZON, writer, mark), True
    return None, decided


def against_us(store: Store, peer: Summary) -> Behind | None:
    """Whether our state predates the peer's collections, by the horizon it sends (as
    against_peer judges: a writer we hold none of counts only if we know of no
    collection that recent)."""
    for writer, mark in peer.horizon.items():
        if reached(store, writer) >= mark:
            continue
        if store.coverage(writer) == ZERO and writer not in store.horizon and store.collected >= mark:
            continue
        return Behind(HORIZON, writer, mark)
    return None


def holds_for(store: Store, evidence: Behind, node_id: str, lineage: int) -> bool:
    """Whether a peer's evidence that we are behind holds for our state: a collection we
    lack, or a forgetting of the life our state continues."""
    if evidence.reason == FORGOTTEN:
        return evidence.writer == node_id and lineage <= evidence.mark.wall
    writer, mark = evidence.writer, evidence.mark
    if store.coverage(writer) == ZERO and writer not in store.horizon and store.collected >= mark:
        return False  # (a writer we forgot, with all of it behind us)
    return reached(store, writer) < mark


def yields(node_id: str, collected: Timestamp, peer: Summary) -> bool:
    """Each behind the other (a split both sides of which collected): the one whose
    newest collection is older resets (ties: the lower id)."""
    return (collected, node_id) < (peer.collected, peer.sender.id)
