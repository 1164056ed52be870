"""Whether a node's state predates collections another node made (docs/PROTOCOL.md,
R7c): then its copies could bring deleted keys back, so it is reset, not merged. Each
test returns the evidence (a `Behind`), which travels to the node judged, and which that
node checks against its own state before it resets. Functions of a store, the lives a node
forgot (gossip/lives.py) and what a peer's summary shows; the protocol acts on what they
find (gossip/protocol.py, `_take_summary`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from gossip.clock import ZERO, Timestamp
from gossip.lives import Lives
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
    up to `mark`, it holds (or collected) less. That writer may be one we forgot since
    (R20), of which a node restored from an older snapshot may hold part. A writer it
    holds none of at all is evidence only if it knows of no collection that recent
    (`collected`, the newest it has made, taken on, or passed by forgetting a writer: a
    node forgets a writer, R20, only with all of it behind it). Returns the evidence, if
    any, and whether its summary told enough to decide (it may not tell how far it holds
    a writer of a retired bucket that differs from ours)."""
    decided = True
    forgotten = ((w, m) for w, m in store.forgotten_writers.items() if w not in store.horizon)
    for writer, mark in itertools.chain(store.horizon.items(), forgotten):  # (lazily: each summary)
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


def we_reset(mine: Behind, theirs: Behind | None, node_id: str, collected: Timestamp, peer: Summary) -> bool:
    """Whether we reset, given the evidence against us (`mine`) and against the peer
    (`theirs`). A life we forgot, back with its old state, is the stale one, whatever
    else it says of us (it may lack nothing but the writers we forgot with it);
    otherwise, if each finds the other behind (or each forgot the other: a split both
    sides of which collected), the one whose newest collection is older resets (ties:
    the lower id)."""
    forgot_us = mine.reason == FORGOTTEN
    mutual = theirs is not None and (theirs.reason != FORGOTTEN or forgot_us)
    return theirs is None or (mutual and (collected, node_id) < (peer.collected, peer.sender.id))


def evidence_against(
    store: Store, lives: Lives, message: Summary, peer: Holdings
) -> tuple[Behind | None, bool]:
    """Whether the sender's state predates our collections (R7c): a life we forgot, back
    with its state, or a writer it lacks past our horizon. The evidence, and whether its
    summary told enough to decide."""
    forgotten = lives.evidence(message.sender.id, message.life_of_state, store.collected)
    if forgotten is not None:
        return forgotten, True
    return against_peer(store, peer, message.horizon, message.collected)


def evidence_for_us(store: Store, lives: Lives, message: Summary, catching_up: bool) -> Behind | None:
    """Whether our state predates the sender's collections: by its own evidence, or by
    the horizon it sends (a node catching up only heeds being forgotten)."""
    claim = message.behind
    heeded = claim is not None and (claim.reason == FORGOTTEN or not catching_up)
    if claim is not None and heeded and holds_for(store, claim, lives.id, lives.lineage):
        return claim
    if catching_up or message.bootstrap:
        return None
    return against_us(store, message)


def learn_collections(store: Store, message: Summary) -> None:
    """A peer collected a writer's entries up to `mark` (its horizon says so, or the
    evidence it sends us), and we hold none of that writer and no entry as old as `mark`
    (a tie breaks on the origin): nothing here can be what those deletes removed (we
    began after them, say, or founded a cluster anew), so we are not behind them. We now
    know of that collection: our `collected` rises to it, and a node that holds none of a
    writer and knows a collection that recent is behind no one for it (R7c)."""
    claim = message.behind
    told = [(claim.writer, claim.mark)] if claim is not None and claim.reason == HORIZON else []
    for writer, mark in (*message.horizon.items(), *told):
        if (mark > store.collected and store.coverage(writer) == ZERO and writer not in store.horizon
                and not store.holds_any_up_to(mark)):
            store.raise_collected(mark)


def take_horizon(store: Store, horizon: Mapping[str, Timestamp]) -> None:
    """What a peer collected of a writer we hold that far: we could have collected it
    too, so its horizon becomes ours (we judge others by it). Never further than we hold,
    or evidence that we lack it would no longer hold for us."""
    for writer, mark in horizon.items():
        if store.coverage(writer) >= mark:
            store.raise_horizon(writer, mark)
