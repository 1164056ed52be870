"""One node's protocol, free of I/O: inputs are writes, messages and the time; outputs
are messages to send. node/ drives it over HTTP, simulations/ in virtual time."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from gossip import deltas, durability, staleness
from gossip.catchup import CatchUp, Phase
from gossip.clock import HybridClock, Timestamp
from gossip.composer import Composer
from gossip.config import Config
from gossip.errors import ClockSkewRejected
from gossip.intake import Intake
from gossip.limits import check_key, check_value, expiry
from gossip.lives import Lives
from gossip.membership import MemberInfo, Membership
from gossip.messages import (
    Behind,
    Exchange,
    ForgottenLife,
    Message,
    Outgoing,
    Reply,
    Rumor,
    RumorItem,
    Snapshot,
    Summary,
)
from gossip.namespaces import is_window_key
from gossip.peers import PeerBook
from gossip.probes import probes_if_on
from gossip.push import Outbox
from gossip.retired import Holdings
from gossip.retirement import Retirement
from gossip.stability import Stability
from gossip.standing import ResetNotice, Standing
from gossip.stats import Stats
from gossip.store import JSON, Entry, Store


class GossipProtocol:
    def __init__(
        self,
        config: Config,
        node_id: str,
        address: str,
        rng: random.Random,
        now_ms: int,
        seeds: Iterable[str] = (),
        generation: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.id = node_id
        self.rng = rng
        self.clock = HybridClock(config.max_offset_ms)
        self.store = Store(int(config.tombstone_grace * 1000), final_expiry=is_window_key)
        generation = now_ms if generation is None else generation
        me = MemberInfo(node_id, address, generation, 0, tags=tuple(sorted((tags or {}).items())))
        self.membership = Membership(me, config, tuple(s for s in seeds if s != address))
        # Each life of a node writes as a writer of its own, so a node restarted empty
        # never claims (in its digest) to hold what it wrote in an earlier life (R16).
        self.lives = Lives(node_id, generation, self.membership, rng)
        self.stats = Stats()
        self.peers = PeerBook()  # what each peer holds, by its summaries
        # Items to push eagerly, per peer (R14, R21); our own go down a tree drawn once a round.
        self.outbox = Outbox(config, rng)
        self.retirement = Retirement(config, self.store, self.stats)
        self.intake = Intake(config, self.store, self.clock, self.stats, self.retirement.retire)
        # What each member holds, from its own summaries: collection waits until every
        # member holds what it drops (R7a).
        self.stability = Stability()
        # Catching up or a member, and the moves between (R7c, R7d, R19).
        self.standing = Standing(self.store, self.lives, self.membership, self.peers, self.outbox,
                                 self.intake, self.retirement, self.stability, self.stats)
        # What our messages carry.
        self.composer = Composer(config, rng, self.store, self.membership, self.lives, self.peers,
                                 self.standing)
        # Direct probes (R23), or None with probing off: the driver ticks them and hands them messages.
        self.probes = probes_if_on(config, self.membership, rng, now_ms)

    @property
    def generation(self) -> int:
        return self.lives.generation

    @property
    def writer(self) -> str:
        """The writer id of this life (R16)."""
        return self.lives.writer

    @property
    def catchup(self) -> CatchUp | None:
        """Our catching up (R7d), or None once we are a member."""
        return self.standing.catchup

    @property
    def bootstrapping(self) -> bool:
        """Whether we are catching up (R7d), not yet a member."""
        return self.standing.catchup is not None

    @property
    def phase(self) -> Phase:
        return self.standing.phase

    @property
    def collected(self) -> Timestamp:
        return self.standing.collected

    @property
    def last_reset(self) -> ResetNotice | None:
        return self.standing.last_reset

    @property
    def caught_up_from(self) -> tuple[str, int] | None:
        return self.standing.caught_up_from

    # -- the local API ---------------------------------------------------------------

    def write(self, key: str, value: JSON, now_ms: int, ttl: float | None = None) -> Entry:
        check_key(key, self.config)
        check_value(value, self.config)
        return self._commit(key, value, False, expiry(ttl, now_ms), now_ms)

    def delete(self, key: str, now_ms: int) -> Entry:
        check_key(key, self.config)
        return self._commit(key, None, True, None, now_ms)

    def read(self, key: str, now_ms: int) -> Entry | None:
        entry = self.store.get(key)
        return entry if entry is not None and entry.is_live(now_ms) else None

    def _commit(self, key: str, value: JSON, deleted: bool, expires: int | None, now_ms: int) -> Entry:
        prev = self.store.watermark(self.writer)
        entry = Entry(key, value, self.clock.tick(now_ms), self.writer, deleted, expires)
        self.store.merge(entry)
        if self.catchup is not None:
            self.catchup.unvetted.add(key)
        self.store.advance(self.writer, prev, entry.ts)
        if self.config.eager_push:
            self.outbox.queue_own(RumorItem(entry, prev), self._push_peers)
        return entry

    def _push_peers(self) -> list[str]:
        return [p for p in self.membership.live_addresses() if p != self.membership.me.address]

    def replication(self, address: str) -> Outgoing:
        """An Exchange with our own writes `address` lacks (for `replicas=k`)."""
        return self.composer.replication(address)

    # -- timing ------------------------------------------------------------------------

    def first_delay(self) -> float:
        """Stagger the first round over one interval so a cluster started at once does
        not gossip in lockstep."""
        return self.rng.uniform(0, self.config.gossip_interval)

    def next_delay(self) -> float:
        jitter = self.config.jitter
        return self.config.gossip_interval * self.rng.uniform(1 - jitter, 1 + jitter)

    # -- anti-entropy rounds ------------------------------------------------------------

    def round(self, now_ms: int) -> list[Outgoing]:
        """Start a round: judge members, forget the long gone, collect what every member
        holds and retire ended writers, then one Exchange to each of `fanout` random
        peers (only to our source while we catch up)."""
        self.stats.rounds += 1
        for info in self.membership.update(now_ms, judging=not self.bootstrapping):
            # What it knew had been collected, as it last told us (or what we had, if less):
            # any collection past that, back with its old state, it may have missed.
            knew = min(self.store.collected, self.stability.collected(info.id))
            self.lives.remember_forgotten(info.id, ForgottenLife(info.generation, knew))
            self.stability.forget(info.id)
        self._let_go(now_ms)
        self.membership.beat()
        self.outbox.new_tree()  # for our writes of this round
        seeking = self.catchup if self.phase is Phase.SEEKING else None
        if seeking is not None and seeking.wait_round(self.membership.seeds, self.id, self.collected):
            self.standing.found(seeking, now_ms)  # (a round without a source: we may found anew)
        source = self.catchup.source if self.catchup is not None else None  # (FOLLOWING: ask it alone)
        peers = [source] if source is not None else self.membership.pick_peers(self.config.fanout, self.rng)
        # Once a round, for the peers whose digest we do not know:
        size = len(self.membership.members) + 1
        guess = deltas.guess(self.store, self.config, size, self.peers.recent_digests, now_ms)
        return [Outgoing(a, self.composer.exchange(a, guess, now_ms)) for a in peers]

    def leave(self) -> list[Outgoing]:
        """Say goodbye: mark ourselves as left and tell every live peer, so they stop
        gossiping with us and show us as left, not dead."""
        self.membership.leave()
        return [Outgoing(a, self.composer.summary(Exchange, to=a)) for a in self.membership.live_addresses()]

    def handle(self, message: Message, now_ms: int) -> Reply | None:
        """Serve a message from a peer: an Exchange gets a Reply, a Rumor nothing.
        Raises PeerError (and applies nothing) if any part of it is unacceptable."""
        if isinstance(message, Rumor):
            self._accept_rumor(message, now_ms)
            return None
        if isinstance(message, Reply):
            self.on_reply(message.sender.address, message, now_ms)
            return None
        behind, peer = self._take_summary(message, now_ms)
        self.stats.exchanges_served += 1
        if behind is not None:  # it could bring deleted keys back: take nothing, tell it
            return self.composer.summary(Reply, behind=behind, request=message)
        self.peers.holds(message.sender.address, peer, message.digest, now_ms)
        if self.bootstrapping and not message.bootstrap:
            return self.composer.summary(Reply, request=message)  # our deltas are not taken yet (R7d)
        delta, more = self.composer.delta_for(peer)
        return self.composer.summary(Reply, delta, more=more, request=message)

    def on_reply(self, address: str, reply: Reply, now_ms: int) -> None:
        behind, peer = self._take_summary(reply, now_ms)
        if behind is not None:
            self.peers.is_behind(address, behind)
        else:
            self.peers.holds(address, peer, reply.digest, now_ms)

    def on_failure(self, address: str) -> None:
        """An exchange with `address` failed (timeout, refused, refusal)."""
        self.stats.failed(address)
        self.peers.holdings.pop(address, None)
        if self.catchup is not None and address == self.catchup.source:
            self.catchup.source = None  # catch up from whoever answers next

    # -- taking in a peer's summary (R7c, R7d) -----------------------------------------------

    def _take_summary(self, message: Summary, now_ms: int) -> tuple[Behind | None, Holdings]:
        """Take in a peer's digest, view and delta. Returns evidence (and applies none of
        its delta) if the peer's state predates our collections; resets us instead if
        ours predates its. Raises PeerError, having applied nothing, on a bad timestamp."""
        try:
            self.intake.check_clock(message, now_ms)
        except ClockSkewRejected:
            if self.catchup is not None:
                self.catchup.clock_refused = True
            raise
        sender = message.sender
        self.membership.merge([sender, *message.members], now_ms)
        outlived = self.lives.outlive(now_ms)
        if self.lives.outlive_forgotten(message.behind, now_ms) or outlived:
            self.outbox.new_tree()  # (our own writes' tree is drawn anew for the new life)
        self.peers.heard(message, self.writer)
        peer = Holdings(message.digest, message.retired_sum, message.retired, self.store.retired)
        # Neither side judges a node that is catching up: it holds only its source's state.
        theirs, decided = None, True
        if not (message.bootstrap or self.bootstrapping):
            theirs, decided = staleness.evidence_against(self.store, self.lives, message, peer)
            staleness.learn_collections(self.store, message)
        mine = staleness.evidence_for_us(self.store, self.lives, message, self.bootstrapping)
        if mine is not None and staleness.we_reset(mine, theirs, self.id, self.collected, message):
            self.standing.reset(now_ms, sender.address, mine, message)
            return None, peer
        if self.catchup is not None:
            if self.catchup.hear(message, peer, self.membership.seeds, self.collected):
                self.standing.catch_up(self.catchup, message, peer, now_ms)
            return None, peer
        self.stability.hear(sender, peer, message.collected)
        if message.bootstrap:
            self.peers.behind.pop(sender.address, None)
            return None, peer  # its delta is not taken until it has caught up
        if theirs is not None:
            self.stats.behind_peers += 1
            return theirs, peer
        self.peers.behind.pop(sender.address, None)
        if not decided:  # it does not tell enough to judge it yet: take nothing of it
            self.stats.undecided += 1
            return None, peer
        self.intake.deltas(message.delta, now_ms)
        # A peer we are not behind: what it collected, we hold past already, so its
        # horizon becomes ours too; and its retired writers bring ours into line (R20).
        staleness.take_horizon(self.store, message.horizon)
        self.retirement.align(message)
        return None, peer

    # -- collection and retirement (R7a, R20) ------------------------------------------------

    def _let_go(self, now_ms: int) -> None:
        """Collect the deletes every member holds past (R7a: only knowing whom to ask, so
        not while catching up, nor with seeds but no member met yet); retire ended writers
        and forget those long retired (R18, R20; see gossip/retirement.py)."""
        judging = not self.bootstrapping
        members = [m.info for m in self.membership.members.values()]
        if judging and (members or not self.membership.seeds):
            self.retirement.collect(now_ms, members, self.stability)
        self.retirement.settle(self.lives.ended, judging)
        self.intake.forget_retired()
        cluster_ms = min(now_ms, self.peers.cluster_time.wall)
        self.retirement.forget(now_ms, cluster_ms, self.lives.ended, members, self.stability)

    # -- eager push --------------------------------------------------------------------

    def _accept_rumor(self, rumor: Rumor, now_ms: int) -> None:
        self.intake.check_clock(rumor, now_ms)
        self.stats.rumors_received += 1
        self.membership.merge([rumor.sender], now_ms)
        for item, group in self.intake.pushes(rumor, now_ms, catching_up=self.bootstrapping):
            if self.config.eager_push:
                self.outbox.relay(item, group.cover)  # our part of the tree

    def has_rumors(self) -> bool:
        """Whether take_rumors has pushes to send now."""
        return self.outbox.ready()

    def take_rumors(self) -> list[Outgoing]:
        """Pushes to send now: one for each peer with items waiting and no push in
        flight, carrying all that waits for it (R21). Each is in flight until the driver
        calls push_ended; then ask has_rumors again."""
        return self.outbox.take(self.membership.me)

    def push_ended(self, push: Outgoing, delivered: bool) -> None:
        """A push from take_rumors is over: answered (`delivered`), or lost, refused or
        timed out. Its peer is free for the next push. One not delivered counts as a
        failure against its peer and goes on to the next peer of each of its groups, so
        one dead member does not cut off the tree below it (R14)."""
        if not delivered:
            self.on_failure(push.address)
        self.outbox.ended(push, delivered)

    # -- durability --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return durability.snapshot(self.store, self.lives, self.membership, self.clock)

    def restore(self, snap: Snapshot, now_ms: int) -> None:
        """Start from a snapshot, before talking to anyone (R19; gossip/durability.py)."""
        parts = self.store, self.lives, self.membership, self.clock
        saved_by, oldest_ours = durability.load(snap, *parts, now_ms)
        self.standing.restored(snap, saved_by, oldest_ours, now_ms)

    # -- reading the state ------------------------------------------------------------------

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return self.store.state_hash(now_ms)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return self.store.live(now_ms)
