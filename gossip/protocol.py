"""One node's protocol, free of I/O: inputs are writes, messages and the time; outputs
are messages to send. node/ drives it over HTTP, simulations/ in virtual time."""

from __future__ import annotations

import math
import random
from bisect import insort
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from gossip import staleness
from gossip.catchup import CatchUp, Phase
from gossip.clock import ZERO, HybridClock, Timestamp
from gossip.codec import entry_size
from gossip.config import Config
from gossip.errors import ClockSkewRejected, InvalidValue
from gossip.limits import check_key, check_value
from gossip.membership import LEFT, MAX_FORGOTTEN, MemberInfo, Membership
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
from gossip.retired import BUCKETS, Holdings, RetiredSummary
from gossip.stability import Stability
from gossip.store import JSON, WRITER_SEP, Entry, Store, writer_id

SummaryType = TypeVar("SummaryType", Exchange, Reply)

# Rounds an ended writer's watermark must stay still here before we retire it (R20): a
# little slack for the last of it still on its way, since taking it back costs a message.
SETTLE_ROUNDS = 2

def _prev(item: RumorItem) -> Timestamp:
    return item.prev


@dataclass
class Counters:
    """What happened, for /health-style reporting and for tests."""

    rounds: int = 0
    exchanges_served: int = 0
    rumors_received: int = 0
    entries_applied: int = 0
    rejected: int = 0
    failures: int = 0
    collected: int = 0  # tombstones and expired entries dropped once every member held them
    retired: int = 0  # writers of ended lives moved from the digest to the retired set (R20)
    resets: int = 0  # times our state was found older than a peer's collections (R7c)
    refused_superseded: int = 0  # entries for keys we lack that our watermark already covers
    refused_stale: int = 0  # pushed entries too old to be news, for keys we lack
    dropped_unvouched: int = 0  # old entries our source could not vouch for, once caught up
    behind_peers: int = 0  # summaries refused because the peer's state predates our collections
    undecided: int = 0  # summaries whose delta we left because they did not tell enough to judge them
    by_peer_failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResetNotice:
    """Why the last reset happened: the evidence, the peer that gave it, and when."""

    evidence: Behind
    peer: str
    at_ms: int


def news_rounds(members: int) -> int:
    """How many rounds a write counts as news, pushed to peers whose digest we do not
    know: twice the rounds push gossip needs to reach `members` nodes (log2 N + ln N,
    Pittel), which leaves room for lost messages and the slowest nodes. (Counting dead
    members too, as the caller does, only lengthens it a little.)"""
    return math.ceil(2 * (math.log2(members) + math.log(members))) if members > 1 else 1


def writer_life(writer: str) -> tuple[str, int] | None:
    """(node id, generation) of a writer id, or None if it is not one of ours."""
    node, sep, generation = writer.rpartition(WRITER_SEP)
    return (node, int(generation)) if sep and generation.isdigit() else None


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
        # Each life of a node writes as a writer of its own, so a node restarted empty
        # never claims (in its digest) to hold what it wrote in an earlier life (R16).
        self._generation = generation
        self.writer = writer_id(node_id, generation)
        # The life whose state ours continues: our own, unless restored from a snapshot
        # (R19). A peer that forgot that life judges our state by it (R7c).
        self.lineage = generation
        me = MemberInfo(node_id, address, generation, 0, tags=tuple(sorted((tags or {}).items())))
        self.membership = Membership(me, config, tuple(s for s in seeds if s != address))
        self.counters = Counters()
        # What each peer holds, by its last summary (its digest and retired set).
        self._peers: dict[str, Holdings] = {}
        self._peer_retired: dict[str, RetiredSummary] = {}  # each peer's last retired-set summary
        # The last digests we heard, from any peer: part of our guess at what a peer whose
        # own summary we do not know holds (see _guess).
        self._recent_digests: deque[Mapping[str, Timestamp]] = deque(maxlen=4)
        # Items to push eagerly, per peer (R14, R21); our own go down a tree drawn once a round.
        self.outbox = Outbox(config, rng)
        self._tree: list[Branch] | None = None
        # Pushes that arrived before an earlier write of their writer, by prev, applied
        # once that gap is filled (by an exchange, or the missing push).
        self._pending: dict[str, list[RumorItem]] = {}
        # What each member holds, from its own summaries: collection waits until every
        # member holds what it drops (R7a).
        self.stability = Stability()
        self.forgotten: dict[str, ForgottenLife] = {}  # lives we forgot, by node id (R18)
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
        self._quiet: dict[str, tuple[Timestamp, int]] = {}  # ended writers: mark, rounds unmoved
        self._retired_at: dict[str, int] = {}  # retired writers: since when (our clock)

    @property
    def _grace_ms(self) -> int:
        return int(self.config.tombstone_grace * 1000)

    @property
    def generation(self) -> int:
        return self._generation

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
        delta, more = self._deltas([(self.writer, theirs, mine)])
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
        self.counters.rounds += 1
        for info in self.membership.update(now_ms, judging=not self.bootstrapping):
            # What it knew had been collected, as it last told us (or what we had, if less):
            # any collection past that, back with its old state, it may have missed.
            knew = min(self.store.collected, self.stability.collected(info.id))
            self._remember_forgotten(info.id, ForgottenLife(info.generation, knew))
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
        guess = self._guess(now_ms)  # once a round, for the peers whose digest we do not know
        return [Outgoing(a, self._exchange_for(a, guess, fresh)) for a in peers]

    def _exchange_for(self, address: str, guess: Mapping[str, Timestamp], fresh: int | None) -> Exchange:
        behind = self._behind.get(address)
        member = self.membership.by_address(address)
        if behind is None and member is not None and not self.bootstrapping:
            behind = self._forgotten_evidence(member.info.id, member.info.generation)
        if behind is not None or self.bootstrapping:
            # Nothing of ours for a peer that must reset first (our delta could make its
            # stale state look current); a catching-up node's deltas are not taken (R7d).
            return self._summary(Exchange, (), behind=behind, to=address)
        peer = self._peers.get(address) or Holdings.guessed(guess, self.store.retired)
        delta, more = self._delta_for(peer, fresh)
        return self._summary(Exchange, delta, more=more, to=address)

    def _guess(self, now_ms: int) -> dict[str, Timestamp]:
        """What a peer whose digest we do not know probably holds: not what one of the
        last few digests we heard lacks and, with eager push off, not the news (what was
        written in the last few rounds, see news_rounds). So without eager push news
        goes to every peer we pick, as in rumor mongering; with it, the push has
        already carried the news and the exchange only repairs. (Its retired set is
        taken to be ours: nothing retired is sent on a guess.)"""
        guess = dict(self.store.watermarks)
        if not self.config.eager_push:
            rounds = news_rounds(len(self.membership.members) + 1)
            news = Timestamp(now_ms - int(rounds * self.config.gossip_interval * 1000), 0)
            # From the writer's last write before the news, so that a peer holding all
            # that came before takes the delta (R10).
            guess = {w: self.store.point_before(w, min(mark, news)) for w, mark in guess.items()}
        for digest in self._recent_digests:
            for writer, mark in guess.items():
                theirs = digest.get(writer, ZERO)
                if theirs < mark:
                    guess[writer] = theirs
        return guess

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
        self.counters.exchanges_served += 1
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
        self.counters.failures += 1
        failures = self.counters.by_peer_failures
        failures[address] = failures.get(address, 0) + 1
        self._peers.pop(address, None)
        if self.catchup is not None and address == self.catchup.source:
            self.catchup.source = None  # catch up from whoever answers next

    # -- what our messages carry ----------------------------------------------------------

    def _summary(
        self, kind: type[SummaryType], delta: tuple[WriterDelta, ...], *, more: bool = False,
        behind: Behind | None = None, to: str | None = None, request: Summary | None = None,
    ) -> SummaryType:  # fmt: skip
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
                   if w in store.watermarks or w in listed or w in sent}  # fmt: skip
        members, roster_end, forgotten = self._view_or_roster(request)
        catchup = self.catchup
        return kind(
            self.membership.me, dict(store.watermarks), tuple(members), delta, horizon, listed,
            # (catching up, we hold nothing to be judged by: say what we know was collected)
            store.collected if catchup is None else catchup.known_collected(self.collected),
            self.bootstrapping, more, behind,
            retired.summary(with_buckets=differ), 0 if self.lineage == self._generation else self.lineage,
            catchup.roster if kind is Exchange and catchup is not None else None, roster_end, forgotten,
        )  # fmt: skip

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
        forgotten = {i: life for i, life in self.forgotten.items()
                     if i > after and (last is None or i <= last)}  # fmt: skip
        return [self.membership.me, *page], end, forgotten

    def _delta_for(
        self, peer: Holdings, until_wall: int | None = None
    ) -> tuple[tuple[WriterDelta, ...], bool]:
        """What a peer lacks, by what its summary shows it holds: every writer (retired
        ones too) we hold further than it does. A writer whose mark its summary does not
        tell is left for a later exchange."""
        store = self.store
        behind = []
        for writer, mine in store.watermarks.items():
            theirs = peer.mark(writer)
            if theirs is not None and theirs < mine:
                behind.append((writer, theirs, mine))
        for b in range(BUCKETS):
            if peer.same_bucket(b):
                continue
            for writer, end in store.retired.bucket(b).items():
                theirs = peer.mark(writer)
                if theirs is not None and theirs < end:
                    behind.append((writer, theirs, end))
        self.rng.shuffle(behind)
        return self._deltas(behind, until_wall)

    def _deltas(
        self, behind: Iterable[tuple[str, Timestamp, Timestamp]], until_wall: int | None = None
    ) -> tuple[tuple[WriterDelta, ...], bool]:
        """For each (writer, base, mine), the entries we hold with base < ts <= mine, in
        ts order, cut at the byte and entry budgets (and before entries written after
        `until_wall`, if given), and whether it was cut. Writers come in the caller's
        (random) order so that no writer starves when every message is cut (R9)."""
        budget = self.config.delta_budget_bytes
        room = self.config.max_entries_per_message
        deltas = []
        cut = False
        for origin, base, mine in behind:
            budget -= len(origin) + 64  # the writer's header: origin, base, upto
            taken: list[Entry] = []
            cut = budget <= 0
            young = False
            for entry in self.store.newer_than(origin, base):
                if entry.ts > mine:
                    break  # held, but not yet covered by our own watermark
                if until_wall is not None and entry.ts.wall > until_wall:
                    young = True
                    break
                size = entry_size(entry)
                if size > budget or room == 0:
                    cut = True
                    break
                budget -= size
                room -= 1
                taken.append(entry)
            if cut and not taken:
                break
            if not taken and young:
                continue
            whole = not (cut or young)
            upto = mine if whole else taken[-1].ts
            final = whole and origin in self.store.retired
            deltas.append(WriterDelta(origin, base, upto, tuple(taken), final))
            if cut:
                break
        return tuple(deltas), cut

    # -- taking in a peer's summary (R7c, R7d) -----------------------------------------------

    def _take_summary(self, message: Summary, now_ms: int) -> tuple[Behind | None, Holdings]:
        """Take in a peer's digest, view and delta. Returns evidence (and applies none of
        its delta) if the peer's state predates our collections; resets us instead if
        ours predates its. Raises PeerError, having applied nothing, on a bad timestamp."""
        self._check_clock(message, now_ms)
        sender = message.sender
        self.membership.merge([sender, *message.members], now_ms)
        self._outlive(now_ms)
        self._outlive_forgotten(message.behind, now_ms)
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
            self.counters.behind_peers += 1
            return theirs, peer
        self._behind.pop(sender.address, None)
        if not decided:  # it does not tell enough to judge it yet: take nothing of it
            self.counters.undecided += 1
            return None, peer
        self._apply_deltas(message.delta, now_ms)
        self._merge_collections(message, now_ms)
        return None, peer

    def _evidence_for_us(self, message: Summary) -> Behind | None:
        """Whether our state predates the sender's collections: by its own evidence, or
        by the horizon it sends (a node catching up only heeds being forgotten)."""
        claim = message.behind
        heeded = claim is not None and (claim.reason == FORGOTTEN or not self.bootstrapping)
        if claim is not None and heeded and staleness.holds_for(self.store, claim, self.id, self.lineage):
            return claim
        if self.bootstrapping or message.bootstrap:
            return None
        return staleness.against_us(self.store, message)

    def _learn_collections(self, message: Summary) -> None:
        """A peer collected a writer's entries up to `mark` (its horizon says so, or the
        evidence it sends us), and we hold none of that writer and no entry older than
        `mark`: nothing here can be what those deletes removed (we began after them, say,
        or founded a cluster anew), so we are not behind them. We now know of that
        collection: our `collected` rises to it, and a node that holds none of a writer
        and knows a collection that recent is behind no one for it (R7c)."""
        store, claim = self.store, message.behind
        told = [(claim.writer, claim.mark)] if claim is not None and claim.reason == HORIZON else []
        for writer, mark in (*message.horizon.items(), *told):
            if (mark > store.collected and store.coverage(writer) == ZERO and writer not in store.horizon
                    and not store.holds_older_than(mark)):  # fmt: skip
                store.raise_collected(mark)

    def _evidence_against(self, message: Summary, peer: Holdings, now_ms: int) -> tuple[Behind | None, bool]:
        """Whether the sender's state predates our collections (R7c), the evidence, and
        whether its summary told enough to decide."""
        forgotten = self._forgotten_evidence(message.sender.id, message.life_of_state)
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
        self._apply_deltas(message.delta, now_ms, catching_up=True)
        self._take_horizon(message)
        self._retire_listed(message, now_ms)
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
        self.counters.dropped_unvouched += catchup.drop_doubted(self.store)
        self.store.raise_collected(collected)
        self.catchup = None
        self._drain_all_pending(now_ms)

    def _take_roster(self, catchup: CatchUp, message: Summary) -> None:
        """A page of the roster from our source: its members went into our membership
        with the view; the lives it forgot, we treat as forgotten too."""
        if message.roster_end is None or catchup.roster is None:
            return
        for node, life in message.forgotten.items():
            known = self.forgotten.get(node)
            if known is None or life.generation > known.generation:
                self._remember_forgotten(node, life)
        pages = [m.id for m in message.members if m.id != message.sender.id]
        catchup.roster = None if message.roster_end else max(pages, default=catchup.roster)

    def _retire_listed(self, message: Summary, now_ms: int) -> None:
        """Retired writers a peer lists: one we hold exactly to that end, we retire too,
        so that our retired sets come to agree; one of which it holds more than we
        retired, we take back into the digest, to receive the rest (R20)."""
        store = self.store
        for writer, end in message.retired.items():
            if store.watermarks.get(writer) == end:
                self._retire_writer(writer, end, now_ms)
            elif store.retired.get(writer, end) < end:
                store.unretire(writer)
        for writer, theirs in message.digest.items():
            if store.retired.get(writer, theirs) < theirs:
                store.unretire(writer)

    def _merge_collections(self, message: Summary, now_ms: int) -> None:
        """A peer we are not behind: what it collected, we hold past already, so its
        horizon becomes ours too (we can judge others by it); and its retired writers
        bring ours into line (R20)."""
        self._take_horizon(message)
        self._retire_listed(message, now_ms)

    def _take_horizon(self, message: Summary) -> None:
        """What a peer collected of a writer we hold that far: we could have collected it
        too, so its horizon becomes ours (we judge others by it). Never further than we
        hold, or evidence that we lack it would no longer hold for us."""
        store = self.store
        for writer, mark in message.horizon.items():
            if store.coverage(writer) >= mark:
                store.raise_horizon(writer, mark)

    def _forgotten_evidence(self, node: str, lineage: int) -> Behind | None:
        """A node whose state continues a life we forgot, back while we have collected
        since: its state may hold keys deleted meanwhile (R7c)."""
        forgotten = self.forgotten.get(node)
        if forgotten is None or lineage > forgotten.generation:
            return None
        if self.store.collected <= forgotten.collected:
            return None
        return Behind(FORGOTTEN, node, Timestamp(forgotten.generation, 0))

    def _remember_forgotten(self, node: str, life: ForgottenLife) -> None:
        self.forgotten.pop(node, None)
        self.forgotten[node] = life
        while len(self.forgotten) > MAX_FORGOTTEN:
            del self.forgotten[next(iter(self.forgotten))]

    def _new_life(self, now_ms: int, above: int = 0) -> None:
        """Start writing as a new life: a generation above every earlier one of ours
        (even one that ran under a clock ahead of ours), so a new writer (R16). When our
        clock is behind the one we must be above, it is not a time any more but a mark,
        and a random step keeps two lives that both had to go above the same one (say,
        both restored from one old snapshot) from sharing a writer."""
        floor = max(self._generation, above)
        self._generation = now_ms if now_ms > floor else floor + self.rng.randrange(1, 1_000_000)
        self.writer = writer_id(self.id, self._generation)
        self.membership.me = replace(self.membership.me, generation=self._generation, heartbeat=0)
        self.membership.outlived = None
        self._tree = None

    def _outlive(self, now_ms: int) -> None:
        """A peer knows a life of ours newer than this one (one that ran under a clock
        ahead of ours): start a life above it, or the cluster would take this one for
        the older (R16). Our state stays: it is a new writer, not a reset."""
        outlived = self.membership.outlived
        if outlived is not None and outlived >= self._generation:
            own_state = self.lineage == self._generation
            self._new_life(now_ms, above=outlived)
            if own_state:  # (a state of this life's own, not one restored: it moves with it)
                self.lineage = self._generation

    def _outlive_forgotten(self, claim: Behind | None, now_ms: int) -> None:
        """A peer forgot a life of ours newer than this one, and this life's state is its
        own (it began empty, or at a reset, in this life). Lives of a node follow each
        other, so this one began after that one, under a clock behind its, and holds
        nothing of its state: rather than be taken for it and reset, start a life above
        it, keeping our state (R16)."""
        if (claim is not None and claim.reason == FORGOTTEN and claim.writer == self.id
                and self.lineage == self._generation < claim.mark.wall):  # fmt: skip
            self._new_life(now_ms, above=claim.mark.wall)
            self.lineage = self._generation

    def _reset(self, now_ms: int, source: str, evidence: Behind, message: Summary) -> None:
        """Our state predates collections a peer made (we were forgotten, or restored
        old state): what we hold could bring deleted keys back. Drop it all and catch up
        from that peer, as a new life: a new generation, a new writer. Writes we took
        that no other node holds are lost with it."""
        forgotten = evidence.mark.wall if evidence.reason == FORGOTTEN else 0
        if evidence.reason == HORIZON and evidence.mark > self._collected_seen:
            self._collected_seen = evidence.mark  # collections exist: we are no cold start
        self._new_life(now_ms, above=forgotten)
        self.lineage = self._generation
        self.membership.restart_judging()
        self.store.clear()
        self.stability.clear()
        self.outbox.clear()
        self._pending.clear()
        self._peers.clear()
        self._peer_retired.clear()
        self._recent_digests.clear()
        self._behind.clear()
        self.forgotten.clear()  # judged against the state we drop; our source's come with its roster
        self._quiet.clear()
        self._retired_at.clear()
        self.catchup = catchup = CatchUp(source=source, met_member=True)
        self.caught_up_from = None  # (this new life has caught up from no one yet)
        catchup.raise_floor(message.horizon)
        if evidence.reason == HORIZON:
            catchup.raise_floor({evidence.writer: evidence.mark})
        self.counters.resets += 1
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

        self.counters.collected += store.collect(now_ms, stable)

    def _knows_cluster(self) -> bool:
        """Whether we know whom to ask before collecting: not while catching up, nor with
        seeds but no member met yet."""
        return not self.bootstrapping and bool(self.membership.members or not self.membership.seeds)

    def _ended(self, writer: str, for_good: bool = False) -> bool:
        """Whether `writer`'s life is over: its node started a newer life, left, or was
        forgotten. (A writer we know nothing of may be a live node not yet met.) Only the
        first two are `for_good`: a forgotten life may be alive and writing, cut off."""
        life = writer_life(writer)
        if life is None:
            return False
        node, generation = life
        if node == self.id:
            return generation != self._generation
        member = self.membership.members.get(node)
        if member is not None:
            return member.info.generation > generation or (
                member.info.generation == generation and member.status == LEFT
            )
        reaped = self.membership.reaped.get(node)
        if reaped is not None and (reaped[0].generation > generation or reaped[0].left):
            return reaped[0].generation >= generation
        forgotten = self.forgotten.get(node)
        return not for_good and forgotten is not None and forgotten.generation >= generation

    def _retire(self, now_ms: int) -> None:
        """Move ended writers whose watermark has stood still for a few rounds from the
        digest to the retired set, so that digests track live nodes, not history (R20).
        Retiring promises nothing about peers, so no member is waited for: any peer that
        holds less is sent the rest. A retired writer none of whose entries is left here
        is forgotten once its life has ended for good, its last write is twice
        reap_after (and max_offset) old, we retired it reap_after ago (time to hear of any
        more of it, such as writes our clock refused), and every member holds it to its
        end or has forgotten it: no member can bring part of it back, and a node that
        could is one the cluster forgot, judged by that (R7c, R18)."""
        store = self.store
        if not self.bootstrapping:  # (catching up, we retire what our source has retired)
            for writer, mark in list(store.watermarks.items()):
                if not self._ended(writer):
                    continue
                seen, rounds = self._quiet.get(writer, (mark, -1))
                if seen != mark:
                    rounds = -1
                if rounds + 1 >= SETTLE_ROUNDS:
                    self._retire_writer(writer, mark, now_ms)
                else:
                    self._quiet[writer] = (mark, rounds + 1)
        for writer in [w for w in self._quiet if w not in store.watermarks]:
            del self._quiet[writer]
        for writer in [w for w in self._pending if w in store.retired]:
            del self._pending[writer]  # it ended: what it waits for comes with the rest of it
        # Measured by the cluster's clocks, not ours alone: a node whose clock runs ahead
        # would forget too soon, and be judged by nodes that still remember (R7c).
        cluster_ms = min(now_ms, self._cluster_time.wall)
        reap_ms = self.config.reap_after * 1000
        forget_ms = 2 * reap_ms + self.config.max_offset_ms
        for writer in [w for w in self._retired_at if w not in store.retired]:
            del self._retired_at[writer]  # taken back into the digest
        members = [m.info for m in self.membership.members.values()]
        for writer, end in list(store.retired.items()):
            since = self._retired_at.setdefault(writer, now_ms)
            if (now_ms - since > reap_ms and cluster_ms - end.wall > forget_ms
                    and self._ended(writer, for_good=True) and not store.holds_any(writer)
                    and self.stability.all_past(members, writer, end)):  # fmt: skip
                store.forget_writer(writer)
                del self._retired_at[writer]

    def _retire_writer(self, writer: str, upto: Timestamp, now_ms: int) -> None:
        self.store.retire(writer, upto)
        self._quiet.pop(writer, None)
        self.counters.retired += 1

    def _apply_deltas(self, deltas: Iterable[WriterDelta], now_ms: int, catching_up: bool = False) -> None:
        """Apply each writer's delta that starts where our history of it ends (R10): one
        that starts past it (the sender guessed our digest wrong) is left for the next
        exchange, so that we never hold a writer's entry above a gap in its history. A
        delta that ends a writer the sender retired lets us retire it too. (An empty one
        that ends a retired writer we know nothing of is one nobody holds anything of,
        which we may have forgotten: a member leaves it; a node catching up takes it, to
        hold all its source holds.)"""
        store = self.store
        for delta in deltas:
            origin = delta.origin
            if store.coverage(origin) < delta.base:
                continue
            known = origin in store.watermarks or origin in store.retired
            if delta.final and not (delta.entries or known or catching_up):
                continue
            for entry in delta.entries:
                self._apply(entry, now_ms)
            store.advance(origin, delta.base, delta.upto)
            if delta.final and store.watermarks.get(origin) == delta.upto:
                self._retire_writer(origin, delta.upto, now_ms)
            if not catching_up:  # (catching up, held pushes wait until we are done)
                self._drain_pending(origin, now_ms)

    def _apply(self, entry: Entry, now_ms: int, pushed: bool = False) -> bool:
        """Merge an incoming entry. False only if it is refused as possibly stale: then
        the caller must not count it as held (no watermark moves past it)."""
        self.clock.observe(entry.ts, now_ms)
        if self.store.get(entry.key) is None:
            if entry.ts <= self.store.coverage(entry.origin):
                # We held this writer's history past it, and the key is gone: something
                # newer replaced it, and has been collected since (R7b).
                self.counters.refused_superseded += 1
                return True
            if pushed and self._stale_push(entry):
                # A push is news; one as old as what we have collected may come from a
                # node that was away. Anti-entropy brings it if it is not stale (R7b).
                self.counters.refused_stale += 1
                return False
        if self.store.merge(entry):
            self.counters.entries_applied += 1
        return True

    # -- eager push --------------------------------------------------------------------

    def _accept_rumor(self, rumor: Rumor, now_ms: int) -> None:
        items = rumor.items
        for item in items:
            self.clock.check(item.entry.ts, now_ms)
        self.counters.rumors_received += 1
        self.membership.merge([rumor.sender], now_ms)
        # A writer with an item refused as stale moves no watermark in this push: a later
        # item of it may follow on from the refused one (R21).
        broken = {i.entry.origin for i in items if self._stale_push(i.entry)}
        for group in rumor.groups:
            for item in group.items:
                origin = item.entry.origin
                coverage = self.store.coverage(origin)
                if self.bootstrapping:
                    # Catching up, we take only what our source vouches for: a push waits,
                    # as one that runs ahead of its writer's history does, until we are
                    # done and hold that history (R7d, R15).
                    self._hold(item)
                elif origin in broken:
                    if not self._apply(item.entry, now_ms, pushed=True):
                        continue
                elif coverage >= item.prev or item.entry.ts <= coverage:
                    self._apply_pushed(item, now_ms)
                    self._drain_pending(origin, now_ms)
                else:  # an earlier write of its writer has not reached us yet (R15)
                    self._hold(item)
                if self.config.eager_push:
                    self.outbox.relay(item, group.cover)  # our part of the tree

    def _stale_push(self, entry: Entry) -> bool:
        """A pushed entry too old to be news, for a key we do not hold (R7b)."""
        store = self.store
        return store.get(entry.key) is None and store.coverage(entry.origin) < entry.ts <= store.collected

    def _apply_pushed(self, item: RumorItem, now_ms: int) -> bool:
        if not self._apply(item.entry, now_ms, pushed=True):
            return False
        self.store.advance(item.entry.origin, item.prev, item.entry.ts)
        return True

    def _hold(self, item: RumorItem) -> None:
        pending = self._pending.setdefault(item.entry.origin, [])
        if len(pending) < self.config.max_entries_per_message:
            insort(pending, item, key=_prev)

    def _drain_all_pending(self, now_ms: int) -> None:
        for origin in list(self._pending):
            self._drain_pending(origin, now_ms)

    def _drain_pending(self, origin: str, now_ms: int) -> None:
        """Apply held pushes of `origin` that now follow on from what we hold."""
        pending = self._pending.get(origin)
        while pending and pending[0].prev <= self.store.coverage(origin):
            self._apply_pushed(pending.pop(0), now_ms)
        if not pending:
            self._pending.pop(origin, None)

    def has_rumors(self) -> bool:
        return bool(self.outbox)

    def take_rumors(self, busy: Collection[str] = ()) -> list[Outgoing]:
        """Pushes to send now: one for each peer with items waiting and none in flight
        (`busy`), carrying all that waits for it (R21). Call it whenever a push ends."""
        return self.outbox.take(self.membership.me, busy)

    def reroute(self, failed: Outgoing) -> bool:
        """A push that could not be delivered goes to the next peer of each of its
        groups, so one dead member does not cut off the tree below it; whether any did
        (then take_rumors has more to send)."""
        return isinstance(failed.message, Rumor) and self.outbox.requeue(failed.message)

    # -- durability --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        store = self.store
        members = tuple(m.info for m in self.membership.members.values())
        return Snapshot(self.clock.last, dict(store.watermarks), dict(store.horizon),
                        tuple(store.entries()), dict(store.retired), dict(self.forgotten),
                        self._generation, self.lineage, members)  # fmt: skip

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
            self._remember_forgotten(node, life)
        self.membership.merge(list(snap.members), now_ms)
        if snap.clock > self.clock.last:
            self.clock.last = snap.clock
        lives = [writer_life(w) for w in (*snap.watermarks, *snap.retired)]
        ours = [life[1] for life in lives if life is not None and life[0] == self.id]
        saved_by = max([snap.generation, *ours])
        if saved_by >= self._generation:
            self._new_life(now_ms, above=saved_by)
        if snap.entries or snap.watermarks or snap.retired:
            # The life our state continues: as saved, else (an older snapshot) the oldest
            # of ours it shows, else the oldest there is (so a peer that forgot any life
            # of ours judges it).
            self.lineage = snap.lineage or min(ours, default=1)
            self.catchup = None
        else:  # nothing to restore: a new life like any other
            self.lineage = self._generation
            self.catchup = CatchUp() if self.membership.seeds else None

    # -- reading the state ------------------------------------------------------------------

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return self.store.state_hash(now_ms)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return self.store.live(now_ms)
