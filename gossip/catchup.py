"""A life catching up (docs/PROTOCOL.md, R7d): the phases of a node's life, and the state
of one that is not yet a member, with the rules that choose its source and doubt what that
source cannot vouch for. The protocol (gossip/protocol.py) holds a `CatchUp` while the
node catches up and drops it once the node is a member.

The phases, and what moves a node between them:

  phase      what the node does                        moves on when                    to
  ---------  ----------------------------------------  -------------------------------  ---------
  SEEKING    sends its summary to the peers it picks;  a peer answers that reaches its  FOLLOWING
             takes no delta; judges no one and is      floor (past PATIENCE_ROUNDS: the
             judged by no one; collects and retires    member knowing the newest
             nothing                                   collection)
                                                       past patience, only nodes        MEMBER
                                                       catching up answer, and it
                                                       outranks them (it founds anew)
  FOLLOWING  exchanges with its source alone; takes    the source had nothing more to   MEMBER
             its deltas, horizon, retired writers and  send; we hold all it holds, the
             roster; doubts the values the source      floor and the whole roster
             cannot vouch for                          the source fails, or answers     SEEKING
                                                       below the floor
  MEMBER     gossips with everyone; judges and is      evidence that its state          FOLLOWING
             judged (R7c); collects and retires        predates a peer's collections
                                                       (a reset: that peer is the
                                                       source)

A life starts as a MEMBER if it has no seeds (it founds a cluster) or restores a state
(R19), else SEEKING.

The floor (per writer, the newest collection of it heard of) keeps a node from catching up
from a stale source: that state would be collected past, and the node reset again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gossip import staleness
from gossip.clock import ZERO, Timestamp
from gossip.lives import Lives
from gossip.messages import Reply, Summary, WriterDelta
from gossip.retired import Holdings
from gossip.store import Store

# Rounds a node catching up waits for a source that reaches its floor before it settles
# for the best peer that answers: the history its floor speaks of may be gone with the
# nodes that held it.
PATIENCE_ROUNDS = 20


class Phase(enum.Enum):
    SEEKING = "seeking a source"
    FOLLOWING = "catching up from a source"
    MEMBER = "member"


@dataclass
class CatchUp:
    source: str | None = None  # the peer we catch up from, once one answered as above
    vetted: str | None = None  # the source whose first answer we checked our state against
    # The roster still to learn from the source, from after this id (None: all learnt).
    roster: str | None = ""
    floor: dict[str, Timestamp] = field(default_factory=dict)
    # The seeds that answered as catching up themselves in a cold cluster, and whether any
    # peer answered as a member (then the cluster is not cold).
    cold_seeds: set[str] = field(default_factory=set)
    met_member: bool = False
    # Rounds waited for a source that reaches the floor, and who answered meanwhile:
    # address -> (a member, not catching up?, the newest collection it knows, its id).
    waited: int = 0
    candidates: dict[str, tuple[bool, Timestamp, str]] = field(default_factory=dict)
    since_member: int = 0  # rounds since a member (not catching up) last spoke to us
    # Keys we wrote meanwhile: each word of our source judges them before its delta is
    # taken, as its first word judged our whole state (by then it may have collected more).
    unvetted: set[str] = field(default_factory=set)
    # Values we hold that a source could not vouch for, by key: the timestamp of ours.
    # Dropped when we are done, unless the source shows it holds a version of the key.
    doubted: dict[str, Timestamp] = field(default_factory=dict)
    # Whether we refused a peer's message for our clock: some node holding a history
    # talked to us, so we found no cluster anew.
    clock_refused: bool = False

    @property
    def phase(self) -> Phase:
        return Phase.SEEKING if self.source is None else Phase.FOLLOWING

    # -- choosing a source ---------------------------------------------------------------

    def hear(self, message: Summary, peer: Holdings, seeds: Iterable[str], collected: Timestamp) -> bool:
        """A peer's summary (we know of collections up to `collected`): note who answers and
        how far it reaches, and take it as our source if it is the first to answer that
        reaches our floor (or, past our patience, the best that answered). Whether the
        sender is our source."""
        sender = message.sender.address
        if message.bootstrap and message.collected == ZERO:
            self.cold_seeds.add(sender)
        else:
            self.met_member = True
            self.since_member = 0
        self.raise_floor(message.horizon)
        reaches = self.reaches_floor(message, peer)
        if isinstance(message, Reply):
            self.candidates[sender] = (not message.bootstrap, message.collected, message.sender.id)
        if sender == self.source and not reaches and self.waited < PATIENCE_ROUNDS:
            self.source = self.vetted = None  # it has not seen what we know was collected
        settle = self.waited >= PATIENCE_ROUNDS and self.best_candidate() == sender
        answered = isinstance(message, Reply) and self.may_source(message, seeds, collected)
        if self.source is None and answered and (reaches or settle):
            self.source = sender  # the first peer that answers
            self.waited, self.candidates = 0, {}
        return sender == self.source

    def wait_round(self, seeds: Iterable[str], me: str, collected: Timestamp) -> bool:
        """A round without a source: whether, past our patience, we should found the
        cluster anew."""
        self.waited += 1
        self.since_member += 1
        patient = self.waited >= PATIENCE_ROUNDS
        return patient and bool(self.candidates) and self.outranks(seeds, me, collected)

    def may_source(self, message: Summary, seeds: Iterable[str], collected: Timestamp) -> bool:
        """Whether a peer may be our source: one that is not catching up itself, or, in a
        cluster starting cold, any peer."""
        return not message.bootstrap or (message.collected == ZERO and self.cold(seeds, collected))

    def cold(self, seeds: Iterable[str], collected: Timestamp) -> bool:
        """Whether the cluster we join is starting cold: no member exists to catch up
        from, so nodes catching up may complete from each other. We know it only when
        every seed has answered, each catching up itself, none having heard of any
        collection, nor we (nor a reset: that knows collections exist). A seed that does
        not answer may be a member cut off from us: we wait for it."""
        seeds = list(seeds)
        return (
            not self.met_member and collected == ZERO and bool(seeds)
            and all(s in self.cold_seeds for s in seeds)
        )

    def raise_floor(self, horizon: Mapping[str, Timestamp]) -> None:
        floor = self.floor
        for writer, mark in horizon.items():
            if mark > floor.get(writer, ZERO):
                floor[writer] = mark

    def reaches_floor(self, message: Summary, peer: Holdings) -> bool:
        """Whether a peer holds (or collected) every writer as far as our floor, judged
        as staleness.against_peer judges."""
        for writer, mark in self.floor.items():
            held = peer.mark(writer) or ZERO
            if max(held, message.horizon.get(writer, ZERO)) >= mark:
                continue
            if held == ZERO and writer not in message.horizon and message.collected >= mark:
                continue
            return False
        return True

    def floor_reached(self, store: Store) -> bool:
        """Whether we hold (or collected) every writer as far as our floor."""
        for writer, mark in self.floor.items():
            held = staleness.reached(store, writer)
            if held < mark and not (held == ZERO and store.collected >= mark):
                return False
        return True

    def known_collected(self, collected: Timestamp) -> Timestamp:
        """The newest collection we know of: `collected` (ours or heard of), or the floor's."""
        return max(collected, max(self.floor.values(), default=ZERO))

    def best_candidate(self) -> str | None:
        """Past our patience, the source to settle for: the member that answered knowing
        the newest collection (no node catching up: they hold nothing to vouch for)."""
        members = [(c, i, a) for a, (member, c, i) in self.candidates.items() if member]
        return max(members)[2] if members else None

    def outranks(self, seeds: Iterable[str], me: str, collected: Timestamp) -> bool:
        """Past our patience, with only nodes catching up answering, whether we are the
        one to found the cluster anew with what we hold: the one that knows the newest
        collection (ties: the highest id). The others then catch up from us."""
        if self.clock_refused or any(member for member, _, _ in self.candidates.values()):
            return False
        if any(seed not in self.candidates for seed in seeds):
            return False  # a seed that does not answer may hold that history, cut off from us
        if self.since_member < PATIENCE_ROUNDS:
            return False  # a member spoke to us lately (our answers may not reach it): it is not gone
        mine = (self.known_collected(collected), me)
        return all(mine > (c, i) for _, c, i in self.candidates.values())

    # -- what the source cannot vouch for ------------------------------------------------

    def doubt(self, store: Store, source: Summary, peer: Holdings, keys: Iterable[str] | None = None) -> None:
        """Before we take a source's state: a value we hold that it cannot vouch for (its
        summary does not reach that far in the writer's history) and that is no newer
        than the newest collection it knows of (our writes while we could not reach it,
        pushes from nodes that were away) may have been deleted, and the delete
        collected, meanwhile: we doubt it. An expired value too: it reads absent, but
        would spread as an entry older than one the cluster collected. Nothing newer than
        that collection can have been; a delete brings nothing back."""
        limit = source.collected
        held = store.entries() if keys is None else (store.get(key) for key in keys)
        for entry in [e for e in held if e is not None and not e.deleted]:
            if (peer.mark(entry.origin) or ZERO) < entry.ts <= limit:
                self.doubted[entry.key] = entry.ts

    def clear_doubts(self, deltas: Iterable[WriterDelta]) -> None:
        """A source that holds a version of a key we doubt (an older one, or ours: our
        push reached it) holds no newer delete of it, and every member held each delete
        the cluster collected: none removed ours. (A newer version replaces ours anyway.)"""
        if self.doubted:
            for entry in (e for delta in deltas for e in delta.entries):
                self.doubted.pop(entry.key, None)

    def drop_doubted(self, store: Store) -> int:
        """Done catching up: the values we still doubt, no source having shown a version
        of their key, we drop. How many."""
        dropped = 0
        for key, ts in self.doubted.items():
            entry = store.get(key)
            if entry is not None and entry.ts == ts:
                store.drop(entry)
                dropped += 1
        self.doubted = {}
        return dropped

    def take_roster(self, message: Summary, lives: Lives, store: Store) -> None:
        """A page of the roster from our source: its members went into our membership
        with the view; the lives and writers it forgot, we treat as forgotten too."""
        if message.roster_end is None or self.roster is None:
            return
        for node, life in message.forgotten.items():
            known = lives.forgotten.get(node)
            if known is None or life.generation > known.generation:
                lives.remember_forgotten(node, life)
        for writer, horizon in message.forgotten_writers.items():
            if writer not in store.horizon and store.coverage(writer) == ZERO:
                store.remember_forgotten_writer(writer, horizon)
        pages = [m.id for m in message.members if m.id != message.sender.id]
        self.roster = None if message.roster_end else max(pages, default=self.roster)

    def vet(self, store: Store, message: Summary, peer: Holdings) -> None:
        """Judge what we hold by our source's summary before taking its delta: all of it on
        its first word, what we wrote since on each word after; then the delta settles the
        doubts it answers."""
        if self.vetted != message.sender.address:  # first word from this source
            self.doubt(store, message, peer)
            self.vetted = message.sender.address
        elif self.unvetted:  # what we wrote since its first word
            self.doubt(store, message, peer, self.unvetted)
        self.clear_doubts(message.delta)

    def done(
        self, store: Store, message: Summary, peer: Holdings, seeds: Iterable[str], collected: Timestamp
    ) -> bool:
        """Whether we have caught up from our source, by its latest word (taken in): it had
        nothing more to send, we hold all it holds, our floor and (from a member) the whole
        roster. A cold source that a member has since outranked is dropped instead."""
        if not isinstance(message, Reply) or message.more or not peer.complete:
            return False
        if any(store.coverage(w) < m for w, m in (*message.digest.items(), *peer.retired_items())):
            return False
        if not self.floor_reached(store):
            return False
        cold = message.bootstrap  # (only a cold source may be catching up itself: may_source)
        if cold and not self.cold(seeds, collected):
            self.source = self.vetted = None  # a member has answered since: catch up from one
            return False
        return self.roster is None or cold
