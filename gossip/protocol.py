"""One node's protocol, free of I/O: inputs are writes, messages and the time; outputs
are messages to send. node/ drives it over HTTP, simulations/ in virtual time."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from gossip import deltas, staleness
from gossip.catchup import CatchUp, Phase
from gossip.clock import ZERO, HybridClock, Timestamp
from gossip.config import Config
from gossip.errors import ClockSkewRejected, InvalidValue
from gossip.intake import Intake
from gossip.limits import check_key, check_value
from gossip.lives import Lives, writer_life
from gossip.membership import MemberInfo, Membership
from gossip.messages import (
    FORGOTTEN,
    HORIZON,
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
    WriterDelta,
)
from gossip.namespaces import is_window_key
from gossip.push import Branch, Outbox
from gossip.retired import Holdings, RetiredSummary
from gossip.retirement import Retirement
from gossip.stability import Stability
from gossip.stats import Stats
from gossip.store import JSON, Entry, Store

SummaryType = TypeVar("SummaryType", Exchange, Reply)


@dataclass(frozen=True, slots=True)
class ResetNotice:
    """Why the last reset happened: the evidence, the peer that gave it, and when."""

    evidence: Behind
    peer: str
    at_ms: int


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
        self.store = Store(self._grace_ms, final_expiry=is_window_key)
        generation = now_ms if generation is None else generation
        me = MemberInfo(node_id, address, generation, 0, tags=tuple(sorted((tags or {}).items())))
        self.membership = Membership(me, config, tuple(s for s in seeds if s != address))
        # Each life of a node writes as a writer of its own, so a node restarted empty
        # never claims (in its digest) to hold what it wrote in an earlier life (R16).
        self.lives = Lives(node_id, generation, self.membership, rng)
        self.stats = Stats()
        # What each peer holds, by its last summary (its digest and retired set).
        self._peers: dict[str, Holdings] = {}
        self._peer_retired: dict[str, RetiredSummary] = {}  # each peer's last retired-set summary
        # The last digests we heard, from any peer: part of our guess at what a peer whose
        # own summary we do not know holds (see deltas.guess).
        self._recent_digests: deque[Mapping[str, Timestamp]] = deque(maxlen=4)
        # Items to push eagerly, per peer (R14, R21); our own go down a tree drawn once a round.
        self.outbox = Outbox(config, rng)
        self._tree: list[Branch] | None = None
        self.retirement = Retirement(config, self.store, self.stats)
        self.intake = Intake(config, self.store, self.clock, self.stats, self.retirement.retire)
        # What each member holds, from its own summaries: collection waits until every
        # member holds what it drops (R7a).
        self.stability = Stability()
        # Peers found behind our collections: the evidence goes with our next exchange.
        self._behind: dict[str, Behind] = {}
        # A life that starts empty with seeds to join through (or is reset) catches up
        # from one peer, its source, before it judges or is judged by anyone (R7d); the
        # phases are tabled in gossip/catchup.py. A node with no seeds founds a cluster:
        # there is nothing to catch up with.
        self.catchup: CatchUp | None = CatchUp() if self.membership.seeds else None
        # The newest collection we know was made anywhere: ours, or a peer's we heard of.
        self._collected_seen = ZERO
        # The newest timestamp of another node's that we have seen (in digests): time as
        # the cluster's clocks tell it, which our own clock, if it runs ahead, cannot push.
        self._cluster_time = ZERO
        self.last_reset: ResetNotice | None = None
        # The life (node id, generation) this one caught up from, once it has (R7d): its
        # state is that life's, and shares its fate if that state proves stale (R7c).
        self.caught_up_from: tuple[str, int] | None = None

    @property
    def _grace_ms(self) -> int:
        return int(self.config.tombstone_grace * 1000)

    @property
    def generation(self) -> int:
        return self.lives.generation

    @property
    def writer(self) -> str:
        """The writer id of this life (R16)."""
        return self.lives.writer

    @property
    def bootstrapping(self) -> bool:
        """Whether we are catching up (R7d), not yet a member."""
        return self.catchup is not None

    @property
    def phase(self) -> Phase:
        return Phase.MEMBER if self.catchup is None else self.catchup.phase

    @property
    def collected(self) -> Timestamp:
        """The newest collection we know of: made here, or heard of from a peer (a node
        reset for missing collections knows the cluster has made some)."""
        return max(self.store.collected, self._collected_seen)

    # -- the local API ---------------------------------------------------------------

    def write(self, key: str, value: JSON, now_ms: int, ttl: float | None = None) -> Entry:
        check_key(key, self.config)
        check_value(value, self.config)
        # Finite, and an expiry the codec can carry (ints below 2**53): round(inf) raised
        # OverflowError (a 500), and a larger expiry made every message with it refused.
        if ttl is not None and not 0 < ttl * 1000 < 2**53 - 1 - now_ms:
            raise InvalidValue(f"ttl must be a positive number of seconds below {(2**53 - now_ms) // 1000}")
        expires = None if ttl is None else now_ms + max(1, round(ttl * 1000))
        return self._commit(key, value, False, expires, now_ms)

    def delete(self, key: str, now_ms: int) -> Entry:
        check_key(key, self.config)
        return self._commit(key, None, True, None, now_ms)

    def read(self, key: str, now_ms: int) -> Entry | None:
        entry = self.store.get(key)
        return entry if entry is not None and entry.is_live(now_ms) else None

    def _commit(
        self, key: str, value: JSON, deleted: bool, expires: int | None, now_ms: int
    ) -> Entry:
        prev = self.store.watermark(self.writer)
        entry = Entry(key, value, self.clock.tick(now_ms), self.writer, deleted, expires)
        self.store.merge(entry)
        if self.catchup is not None:
            self.catchup.unvetted.add(key)
        self.store.advance(self.writer, prev, entry.ts)
        if self.config.eager_push:
            if self._tree is None:
                peers = [p for p in self.membership.live_addresses() if p != self.membership.me.address]
                self._tree = self.outbox.tree(peers)
            self.outbox.queue(RumorItem(entry, prev), self._tree)
        return entry

    def replication(self, address: str) -> Outgoing:
        """An Exchange carrying our own writes `address` lacks by its last summary (all
        of them if we have none): the digest of its Reply tells whether it now holds them
        (for `replicas=k`)."""
        peer = self._peers.get(address)
        theirs = (peer.mark(self.writer) if peer is not None else None) or ZERO
        mine = self.store.watermark(self.writer)
        delta, more = deltas.cut(self.store, self.config, [(self.writer, theirs, mine)])
        return Outgoing(address, self._summary(Exchange, delta, more=more, to=address))

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
        self._collect(now_ms)
        self._retire(now_ms)
        self.membership.beat()
        self._tree = None  # a new tree for our writes of this round
        # With eager push on, writes younger than one interval are left to the push, so
        # that an exchange repairs what it missed instead of sending everything twice.
        fresh = now_ms - int(self.config.gossip_interval * 1000) if self.config.eager_push else None
        seeking = self.catchup if self.phase is Phase.SEEKING else None
        if seeking is not None and seeking.wait_round(self.membership.seeds, self.id, self.collected):
            self._found(seeking, now_ms)  # (a round without a source: we may found anew)
        if self.catchup is not None and self.catchup.source is not None:  # FOLLOWING: ask the source alone
            peers = [self.catchup.source]
        else:
            peers = self.membership.pick_peers(self.config.fanout, self.rng)
        # Once a round, for the peers whose digest we do not know:
        size = len(self.membership.members) + 1
        guess = deltas.guess(self.store, self.config, size, self._recent_digests, now_ms)
        return [Outgoing(a, self._exchange_for(a, guess, fresh)) for a in peers]

    def _exchange_for(self, address: str, guess: Mapping[str, Timestamp], fresh: int | None) -> Exchange:
        behind = self._behind.get(address)
        member = self.membership.by_address(address)
        if behind is None and member is not None and not self.bootstrapping:
            behind = self.lives.evidence(member.info.id, member.info.generation, self.store.collected)
        if behind is not None or self.bootstrapping:
            # Nothing of ours for a peer that must reset first (our delta could make its
            # stale state look current); a catching-up node's deltas are not taken (R7d).
            return self._summary(Exchange, (), behind=behind, to=address)
        peer = self._peers.get(address) or Holdings.guessed(guess, self.store.retired)
        delta, more = self._delta_for(peer, fresh)
        return self._summary(Exchange, delta, more=more, to=address)

    def leave(self) -> list[Outgoing]:
        """Say goodbye: mark ourselves as left and tell every live peer, so they stop
        gossiping with us and show us as left, not dead."""
        self.membership.leave()
        return [Outgoing(a, self._summary(Exchange, (), to=a)) for a in self.membership.live_addresses()]

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
            return self._summary(Reply, (), behind=behind, request=message)
        self._peers[message.sender.address] = peer
        self._recent_digests.append(message.digest)
        if self.bootstrapping and not message.bootstrap:
            return self._summary(Reply, (), request=message)  # our deltas are not taken yet (R7d)
        delta, more = self._delta_for(peer)
        return self._summary(Reply, delta, more=more, request=message)

    def on_reply(self, address: str, reply: Reply, now_ms: int) -> None:
        behind, peer = self._take_summary(reply, now_ms)
        if behind is not None:
            self._behind[address] = behind
            self._peers.pop(address, None)
            return
        self._peers[address] = peer
        self._recent_digests.append(reply.digest)

    def on_failure(self, address: str) -> None:
        """An exchange with `address` failed (timeout, refused, refusal)."""
        self.stats.failures += 1
        failures = self.stats.by_peer_failures
        failures[address] = failures.get(address, 0) + 1
        self._peers.pop(address, None)
        if self.catchup is not None and address == self.catchup.source:
            self.catchup.source = None  # catch up from whoever answers next

    # -- what our messages carry ----------------------------------------------------------

    def _summary(
        self, kind: type[SummaryType], delta: tuple[WriterDelta, ...], *, more: bool = False,
        behind: Behind | None = None, to: str | None = None, request: Summary | None = None,
    ) -> SummaryType:
        """Our digest, view, retired set and collection state, around `delta`, for the
        peer `to` (an Exchange) or the sender of `request` (a Reply). The retired set goes
        as a summary, with its bucket hashes when the peer's set may differ, and the
        buckets we know differ listed whole (R20); a node catching up asks for the roster
        and is answered with pages of it instead of a view (R7d)."""
        store, retired = self.store, self.store.retired
        theirs = request.retired_sum if request is not None else self._peer_retired.get(to or "")
        mine = retired.summary(False)
        differ = theirs is None or not theirs.same_set(mine)
        listed: dict[str, Timestamp] = {}
        if theirs is not None and differ:
            room = self.config.max_members_per_message
            buckets = retired.differing(theirs)
            self.rng.shuffle(buckets)
            for b in buckets:
                items = retired.bucket(b)
                if len(items) > room:
                    continue
                listed.update(items)
                room -= len(items)
        sent = {d.origin for d in delta}
        horizon = {w: t for w, t in store.horizon.items()
                   if w in store.watermarks or w in listed or w in sent}
        members, roster_end, forgotten = self._view_or_roster(request)
        catchup = self.catchup
        return kind(
            self.membership.me, dict(store.watermarks), tuple(members), delta, horizon, listed,
            # (catching up, we hold nothing to be judged by: say what we know was collected)
            store.collected if catchup is None else catchup.known_collected(self.collected),
            self.bootstrapping, more, behind,
            retired.summary(with_buckets=differ), 0 if self.lives.own_state else self.lives.lineage,
            catchup.roster if kind is Exchange and catchup is not None else None, roster_end, forgotten,
        )

    def _view_or_roster(
        self, request: Summary | None
    ) -> tuple[list[MemberInfo], bool | None, dict[str, ForgottenLife]]:
        """A view (R13); or, for a node catching up that asks for it, a page of the
        roster: the members we know with ids after its cursor, and the lives we forgot
        among them, so that it knows every member before it collects or forgets (R7d)."""
        if request is None or request.roster is None:
            return self.membership.view(self.rng), None, {}
        after = request.roster
        page, end = self.membership.roster_page(after, self.config.max_members_per_message - 1)
        last = page[-1].id if page and not end else None
        forgotten = {i: life for i, life in self.lives.forgotten.items()
                     if i > after and (last is None or i <= last)}
        return [self.membership.me, *page], end, forgotten

    def _delta_for(
        self, peer: Holdings, until_wall: int | None = None
    ) -> tuple[tuple[WriterDelta, ...], bool]:
        """What a peer lacks, by what its summary shows it holds (in a random order, R9),
        cut to one message."""
        behind = deltas.lacking(self.store, peer)
        self.rng.shuffle(behind)
        return deltas.cut(self.store, self.config, behind, until_wall)

    # -- taking in a peer's summary (R7c, R7d) -----------------------------------------------

    def _take_summary(self, message: Summary, now_ms: int) -> tuple[Behind | None, Holdings]:
        """Take in a peer's digest, view and delta. Returns evidence (and applies none of
        its delta) if the peer's state predates our collections; resets us instead if
        ours predates its. Raises PeerError, having applied nothing, on a bad timestamp."""
        self._check_clock(message, now_ms)
        sender = message.sender
        self.membership.merge([sender, *message.members], now_ms)
        outlived = self.lives.outlive(now_ms)
        if self.lives.outlive_forgotten(message.behind, now_ms) or outlived:
            self._tree = None  # (our own writes' tree is drawn anew for the new life)
        self._peer_retired[sender.address] = message.retired_sum
        if message.collected > self._collected_seen:
            self._collected_seen = message.collected
        newest = max((ts for w, ts in message.digest.items() if w != self.writer), default=ZERO)
        if newest > self._cluster_time:
            self._cluster_time = newest
        peer = Holdings(message.digest, message.retired_sum, message.retired, self.store.retired)
        # Neither side judges a node that is catching up: it holds only its source's state.
        theirs, decided = None, True
        if not (message.bootstrap or self.bootstrapping):
            theirs, decided = self._evidence_against(message, peer, now_ms)
            self._learn_collections(message)
        mine = self._evidence_for_us(message)
        # A life we forgot, back with its old state, is the stale one, whatever else it
        # says of us (it may lack nothing but the writers we forgot with it); otherwise, if
        # each finds the other behind (or each forgot the other), the one whose newest
        # collection is older resets.
        forgot_us = mine is not None and mine.reason == FORGOTTEN
        mutual = theirs is not None and (theirs.reason != FORGOTTEN or forgot_us)
        yields = theirs is None or (mutual and staleness.yields(self.id, self.collected, message))
        if mine is not None and yields:
            self._reset(now_ms, sender.address, mine, message)
            return None, peer
        if self.catchup is not None:
            if self.catchup.hear(message, peer, self.membership.seeds, self.collected):
                self._catch_up(self.catchup, message, peer, now_ms)
            return None, peer
        self.stability.hear(sender, peer, message.collected)
        if message.bootstrap:
            self._behind.pop(sender.address, None)
            return None, peer  # its delta is not taken until it has caught up
        if theirs is not None:
            self.stats.behind_peers += 1
            return theirs, peer
        self._behind.pop(sender.address, None)
        if not decided:  # it does not tell enough to judge it yet: take nothing of it
            self.stats.undecided += 1
            return None, peer
        self.intake.deltas(message.delta, now_ms)
        self._merge_collections(message, now_ms)
        return None, peer

    def _evidence_for_us(self, message: Summary) -> Behind | None:
        """Whether our state predates the sender's collections: by its own evidence, or
        by the horizon it sends (a node catching up only heeds being forgotten)."""
        claim = message.behind
        heeded = claim is not None and (claim.reason == FORGOTTEN or not self.bootstrapping)
        lineage = self.lives.lineage
        if claim is not None and heeded and staleness.holds_for(self.store, claim, self.id, lineage):
            return claim
        if self.bootstrapping or message.bootstrap:
            return None
        return staleness.against_us(self.store, message)

    def _learn_collections(self, message: Summary) -> None:
        """A peer collected a writer's entries up to `mark` (its horizon says so, or the
        evidence it sends us), and we hold none of that writer and no entry as old as
        `mark` (a tie breaks on the origin): nothing here can be what those deletes
        removed (we began after them, say, or founded a cluster anew), so we are not
        behind them. We now know of that
        collection: our `collected` rises to it, and a node that holds none of a writer
        and knows a collection that recent is behind no one for it (R7c)."""
        store, claim = self.store, message.behind
        told = [(claim.writer, claim.mark)] if claim is not None and claim.reason == HORIZON else []
        for writer, mark in (*message.horizon.items(), *told):
            if (mark > store.collected and store.coverage(writer) == ZERO and writer not in store.horizon
                    and not store.holds_any_up_to(mark)):
                store.raise_collected(mark)

    def _evidence_against(self, message: Summary, peer: Holdings, now_ms: int) -> tuple[Behind | None, bool]:
        """Whether the sender's state predates our collections (R7c), the evidence, and
        whether its summary told enough to decide."""
        forgotten = self.lives.evidence(message.sender.id, message.life_of_state, self.store.collected)
        if forgotten is not None:
            return forgotten, True
        return staleness.against_peer(self.store, peer, message.horizon, message.collected)

    def _check_clock(self, message: Summary, now_ms: int) -> None:
        check = self.clock.check
        try:
            for stamps in (message.digest, message.horizon, message.retired):
                for ts in stamps.values():
                    check(ts, now_ms)
            for delta in message.delta:
                check(delta.upto, now_ms)
        except ClockSkewRejected:
            if self.catchup is not None:
                self.catchup.clock_refused = True
            raise

    def _catch_up(self, catchup: CatchUp, message: Summary, peer: Holdings, now_ms: int) -> None:
        """A summary from our source while we catch up: take its delta, what it has
        collected and retired, and the roster; done once it had nothing more to send and
        we hold all it holds (R7d)."""
        store = self.store
        if catchup.vetted != message.sender.address:  # first word from this source
            catchup.doubt(store, message, peer)
            catchup.vetted = message.sender.address
        elif catchup.unvetted:  # what we wrote since its first word
            catchup.doubt(store, message, peer, catchup.unvetted)
        catchup.clear_doubts(message.delta)
        self.intake.deltas(message.delta, now_ms, catching_up=True)
        self._take_horizon(message)
        self.retirement.align(message)
        self._take_roster(catchup, message)
        self.stability.hear(message.sender, peer, message.collected)
        if not isinstance(message, Reply) or message.more or not peer.complete:
            return
        if any(store.coverage(w) < m for w, m in (*message.digest.items(), *peer.retired_items())):
            return
        if not catchup.floor_reached(store):
            return
        cold = message.bootstrap  # (only a cold source may be catching up itself: CatchUp.may_source)
        if cold and not catchup.cold(self.membership.seeds, self.collected):
            catchup.source = catchup.vetted = None  # a member has answered since: catch up from one
            return
        if catchup.roster is not None and not cold:
            return
        self.caught_up_from = (message.sender.id, message.sender.generation)
        # We hold what it holds: we know what it knew.
        self._done_catching_up(catchup, message.collected, now_ms)

    def _found(self, catchup: CatchUp, now_ms: int) -> None:
        """Every seed answers, catching up, and none holds what our floor speaks of: that
        history is gone with the nodes that held it. We found the cluster anew with what
        we hold, knowing what we knew had been collected."""
        self._done_catching_up(catchup, catchup.known_collected(self.collected), now_ms)

    def _done_catching_up(self, catchup: CatchUp, collected: Timestamp, now_ms: int) -> None:
        """Caught up (or founding anew), knowing of the collections up to `collected`:
        what we still doubt goes, and the pushes we held apply where they follow on."""
        self.stats.dropped_unvouched += catchup.drop_doubted(self.store)
        self.store.raise_collected(collected)
        self.catchup = None
        self.intake.drain_all(now_ms)

    def _take_roster(self, catchup: CatchUp, message: Summary) -> None:
        """A page of the roster from our source: its members went into our membership
        with the view; the lives it forgot, we treat as forgotten too."""
        if message.roster_end is None or catchup.roster is None:
            return
        for node, life in message.forgotten.items():
            known = self.lives.forgotten.get(node)
            if known is None or life.generation > known.generation:
                self.lives.remember_forgotten(node, life)
        pages = [m.id for m in message.members if m.id != message.sender.id]
        catchup.roster = None if message.roster_end else max(pages, default=catchup.roster)

    def _merge_collections(self, message: Summary, now_ms: int) -> None:
        """A peer we are not behind: what it collected, we hold past already, so its
        horizon becomes ours too (we can judge others by it); and its retired writers
        bring ours into line (R20)."""
        self._take_horizon(message)
        self.retirement.align(message)

    def _take_horizon(self, message: Summary) -> None:
        """What a peer collected of a writer we hold that far: we could have collected it
        too, so its horizon becomes ours (we judge others by it). Never further than we
        hold, or evidence that we lack it would no longer hold for us."""
        store = self.store
        for writer, mark in message.horizon.items():
            if store.coverage(writer) >= mark:
                store.raise_horizon(writer, mark)

    def _new_life(self, now_ms: int, above: int = 0) -> None:
        self.lives.new(now_ms, above)
        self._tree = None  # (our own writes' tree is drawn anew for the new life)

    def _reset(self, now_ms: int, source: str, evidence: Behind, message: Summary) -> None:
        """Our state predates collections a peer made (we were forgotten, or restored
        old state): what we hold could bring deleted keys back. Drop it all and catch up
        from that peer, as a new life: a new generation, a new writer. Writes we took
        that no other node holds are lost with it."""
        forgotten = evidence.mark.wall if evidence.reason == FORGOTTEN else 0
        if evidence.reason == HORIZON and evidence.mark > self._collected_seen:
            self._collected_seen = evidence.mark  # collections exist: we are no cold start
        self._new_life(now_ms, above=forgotten)
        self.lives.lineage = self.lives.generation
        self.membership.restart_judging()
        self.store.clear()
        self.stability.clear()
        self.outbox.clear()
        self.intake.pending.clear()
        self._peers.clear()
        self._peer_retired.clear()
        self._recent_digests.clear()
        self._behind.clear()
        self.lives.forgotten.clear()  # judged against the state we drop; our source's come with its roster
        self.retirement.clear()
        self.catchup = catchup = CatchUp(source=source, met_member=True)
        self.caught_up_from = None  # (this new life has caught up from no one yet)
        catchup.raise_floor(message.horizon)
        if evidence.reason == HORIZON:
            catchup.raise_floor({evidence.writer: evidence.mark})
        self.stats.resets += 1
        self.last_reset = ResetNotice(evidence, source, now_ms)

    # -- collection and retirement (R7a, R20) ------------------------------------------------

    def _collect(self, now_ms: int) -> None:
        if not self._knows_cluster() or not self.store.has_ripe(now_ms):
            return
        members = [m.info for m in self.membership.members.values()]
        store, stability = self.store, self.stability

        def stable(writer: str) -> Timestamp:
            mine = store.coverage(writer)
            return min(mine, stability.coverage(members, writer)) if members else mine

        self.stats.collected += store.collect(now_ms, stable)

    def _knows_cluster(self) -> bool:
        """Whether we know whom to ask before collecting: not while catching up, nor with
        seeds but no member met yet."""
        return not self.bootstrapping and bool(self.membership.members or not self.membership.seeds)

    def _retire(self, now_ms: int) -> None:
        """Retire ended writers, and forget those long retired (R18, R20; see
        gossip/retirement.py)."""
        self.retirement.settle(self.lives.ended, judging=not self.bootstrapping)
        self.intake.forget_retired()
        members = [m.info for m in self.membership.members.values()]
        cluster_ms = min(now_ms, self._cluster_time.wall)
        self.retirement.forget(now_ms, cluster_ms, self.lives.ended, members, self.stability)

    # -- eager push --------------------------------------------------------------------

    def _accept_rumor(self, rumor: Rumor, now_ms: int) -> None:
        for item in rumor.items:
            self.clock.check(item.entry.ts, now_ms)
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
        store = self.store
        members = tuple(m.info for m in self.membership.members.values())
        return Snapshot(self.clock.last, dict(store.watermarks), dict(store.horizon),
                        tuple(store.entries()), dict(store.retired), dict(self.lives.forgotten),
                        self.lives.generation, self.lives.lineage, members)

    def restore(self, snap: Snapshot, now_ms: int) -> None:
        """Start from a snapshot (before talking to anyone): its entries, what we held
        completely, what we had collected and retired, whom we knew, the lives we forgot,
        and a clock above all we ever wrote; as a new life above the one that saved it,
        whose state ours continues (R19). A node with state does not catch up from
        scratch: peers judge it (R7c)."""
        store = self.store
        for entry in snap.entries:
            store.merge(entry)
        store.watermarks.update(snap.watermarks)
        for writer, mark in snap.horizon.items():
            store.raise_horizon(writer, mark)
        for writer, end in snap.retired.items():
            store.retired.set(writer, end)
        for node, life in snap.forgotten.items():
            self.lives.remember_forgotten(node, life)
        self.membership.merge(list(snap.members), now_ms)
        if snap.clock > self.clock.last:
            self.clock.last = snap.clock
        lives = [writer_life(w) for w in (*snap.watermarks, *snap.retired)]
        ours = [life[1] for life in lives if life is not None and life[0] == self.id]
        saved_by = max([snap.generation, *ours])
        if saved_by >= self.lives.generation:
            self._new_life(now_ms, above=saved_by)
        if snap.entries or snap.watermarks or snap.retired:
            # The life our state continues: as saved, else (an older snapshot) the oldest
            # of ours it shows, else the oldest there is (so a peer that forgot any life
            # of ours judges it).
            self.lives.lineage = snap.lineage or min(ours, default=1)
            self.catchup = None
        else:  # nothing to restore: a new life like any other
            self.lives.lineage = self.lives.generation
            self.catchup = CatchUp() if self.membership.seeds else None

    # -- reading the state ------------------------------------------------------------------

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return self.store.state_hash(now_ms)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return self.store.live(now_ms)
