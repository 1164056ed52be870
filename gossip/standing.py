"""Where a node stands in its life: catching up (a `CatchUp`, R7d) or a member; and the
moves between: done catching up (or founding anew), reset as a new life when its state
proves stale (R7c), restored from a snapshot (R19). The phases are tabled in
gossip/catchup.py."""

from __future__ import annotations

from dataclasses import dataclass

from gossip import durability, staleness
from gossip.catchup import CatchUp, Phase
from gossip.clock import Timestamp
from gossip.intake import Intake
from gossip.lives import Lives
from gossip.membership import Membership
from gossip.messages import FORGOTTEN, HORIZON, Behind, Snapshot, Summary
from gossip.peers import PeerBook
from gossip.push import Outbox
from gossip.retired import Holdings
from gossip.retirement import Retirement
from gossip.stability import Stability
from gossip.stats import Stats
from gossip.store import Store


@dataclass(frozen=True, slots=True)
class ResetNotice:
    """Why the last reset happened: the evidence, the peer that gave it, and when."""

    evidence: Behind
    peer: str
    at_ms: int


class Standing:
    def __init__(
        self, store: Store, lives: Lives, membership: Membership, peers: PeerBook, outbox: Outbox,
        intake: Intake, retirement: Retirement, stability: Stability, stats: Stats,
    ) -> None:
        self._store = store
        self._lives = lives
        self._membership = membership
        self._peers = peers
        self._outbox = outbox
        self._intake = intake
        self._retirement = retirement
        self._stability = stability
        self.stats = stats
        # A life that starts empty with seeds to join through (or is reset) catches up
        # from one peer, its source, before it judges or is judged by anyone (R7d). A node
        # with no seeds founds a cluster: there is nothing to catch up with.
        self.catchup: CatchUp | None = CatchUp() if membership.seeds else None
        self.last_reset: ResetNotice | None = None
        # The life (node id, generation) this one caught up from, once it has (R7d): its
        # state is that life's, and shares its fate if that state proves stale (R7c).
        self.caught_up_from: tuple[str, int] | None = None

    @property
    def phase(self) -> Phase:
        return Phase.MEMBER if self.catchup is None else self.catchup.phase

    @property
    def collected(self) -> Timestamp:
        """The newest collection we know of: made here, or heard of from a peer (a node
        reset for missing collections knows the cluster has made some)."""
        return max(self._store.collected, self._peers.collected_seen)

    def catch_up(self, catchup: CatchUp, message: Summary, peer: Holdings, now_ms: int) -> None:
        """A summary from our source while we catch up: take its delta, what it has
        collected and retired, and the roster; done once it had nothing more to send and
        we hold all it holds (R7d)."""
        store = self._store
        catchup.vet(store, message, peer)
        self._intake.deltas(message.delta, now_ms, catching_up=True)
        staleness.take_horizon(store, message.horizon)
        self._retirement.align(message)
        catchup.take_roster(message, self._lives, store)
        self._stability.hear(message.sender, peer, message.collected)
        if not catchup.done(store, message, peer, self._membership.seeds, self.collected):
            return
        self.caught_up_from = (message.sender.id, message.sender.generation)
        # We hold what it holds: we know what it knew.
        self._done(catchup, message.collected, now_ms)

    def found(self, catchup: CatchUp, now_ms: int) -> None:
        """Every seed answers, catching up, and none holds what our floor speaks of: that
        history is gone with the nodes that held it. We found the cluster anew with what
        we hold, knowing what we knew had been collected."""
        self._done(catchup, catchup.known_collected(self.collected), now_ms)

    def _done(self, catchup: CatchUp, collected: Timestamp, now_ms: int) -> None:
        """Caught up (or founding anew), knowing of the collections up to `collected`:
        what we still doubt goes, and the pushes we held apply where they follow on."""
        self.stats.dropped_unvouched += catchup.drop_doubted(self._store)
        self._store.raise_collected(collected)
        self.catchup = None
        self._intake.drain_all(now_ms)

    def new_life(self, now_ms: int, above: int = 0) -> None:
        self._lives.new(now_ms, above)
        self._outbox.new_tree()  # (our own writes' tree is drawn anew for the new life)

    def reset(self, now_ms: int, source: str, evidence: Behind, message: Summary) -> None:
        """Our state predates collections a peer made (we were forgotten, or restored
        old state): what we hold could bring deleted keys back. Drop it all and catch up
        from that peer, as a new life: a new generation, a new writer. Writes we took
        that no other node holds are lost with it."""
        peers, lives = self._peers, self._lives
        forgotten = evidence.mark.wall if evidence.reason == FORGOTTEN else 0
        if evidence.reason == HORIZON and evidence.mark > peers.collected_seen:
            peers.collected_seen = evidence.mark  # collections exist: we are no cold start
        self.new_life(now_ms, above=forgotten)
        lives.lineage = lives.generation
        self._membership.restart_judging()
        self._store.clear()
        self._stability.clear()
        self._outbox.clear()
        self._intake.pending.clear()
        peers.clear()
        lives.forgotten.clear()  # judged against the state we drop; our source's come with its roster
        self._retirement.clear()
        self.catchup = catchup = CatchUp(source=source, met_member=True)
        self.caught_up_from = None  # (this new life has caught up from no one yet)
        catchup.raise_floor(message.horizon)
        if evidence.reason == HORIZON:
            catchup.raise_floor({evidence.writer: evidence.mark})
        self.stats.resets += 1
        self.last_reset = ResetNotice(evidence, source, now_ms)

    def restored(self, snap: Snapshot, saved_by: int, oldest_ours: int, now_ms: int) -> None:
        """A snapshot was loaded (gossip/durability.py): we live on as a new life above
        the one that saved it, whose state ours continues (R19). A node with state does
        not catch up from scratch: peers judge it (R7c)."""
        lives = self._lives
        if saved_by >= lives.generation:
            self.new_life(now_ms, above=saved_by)
        if durability.holds_state(snap):
            # The life our state continues: as saved, else (an older snapshot) the oldest
            # of ours it shows, else the oldest there is (so a peer that forgot any life
            # of ours judges it).
            lives.lineage = snap.lineage or oldest_ours
            self.catchup = None
        else:  # nothing to restore: a new life like any other
            lives.lineage = lives.generation
            self.catchup = CatchUp() if self._membership.seeds else None
