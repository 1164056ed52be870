"""Whether a node's state predates collections another node made (docs/PROTOCOL.md,
R7c): then its copies could bring deleted keys back, so it is reset, not merged. Each
test returns the evidence (a `Behind`), which travels to the node judged, and which that
node checks against its own state before it resets. Pure functions of a store and a
peer's summary; the forgotten-life test, which needs the membership, is the protocol's."""

from __future__ import annotations

from collections.abc import Callable

from gossip.clock import ZERO, Timestamp
from gossip.messages import FORGOTTEN, HORIZON, Behind, Summary
from gossip.store import Store


def _reached(store: Store, writer: str) -> Timestamp:
    """How far our history of `writer` goes, held or collected."""
    return max(store.coverage(writer), store.horizon.get(writer, ZERO))


def against_peer(store: Store, peer: Summary, ended: Callable[[str], bool]) -> Behind | None:
    """Whether the peer's state predates our collections, by its summary: it lacks a
    writer's history up to one of our collections of it. (A writer it does not list at
    all counts only if that writer may still be alive: every member knows a live one; an
    ended one the peer may have retired long ago.)"""
    for writer, mark in store.horizon.items():
        listed = writer in peer.digest
        if writer in peer.retired or not (listed or writer in store.watermarks):
            continue
        if max(peer.digest.get(writer, ZERO), peer.horizon.get(writer, ZERO)) >= mark:
            continue
        if listed or not ended(writer):
            return Behind(HORIZON, writer, mark)
    return None


def against_us(store: Store, peer: Summary) -> Behind | None:
    """Whether our state predates the peer's collections, by the horizon it sends."""
    for writer, mark in peer.horizon.items():
        if _reached(store, writer) < mark:
            return Behind(HORIZON, writer, mark)
    return None


def holds_for(store: Store, evidence: Behind, node_id: str, generation: int) -> bool:
    """Whether a peer's evidence that we are behind holds for our state and life."""
    if evidence.reason == FORGOTTEN:
        return evidence.writer == node_id and evidence.mark.wall == generation
    return _reached(store, evidence.writer) < evidence.mark


def yields(store: Store, node_id: str, peer: Summary) -> bool:
    """Each behind the other (a split both sides of which collected): the one whose
    newest collection is older resets (ties: the lower id)."""
    return (store.collected, node_id) < (peer.collected, peer.sender.id)
