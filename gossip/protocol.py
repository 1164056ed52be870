"""One node's protocol, free of I/O: inputs are writes, messages and the time; outputs
are messages to send. node/ drives it over HTTP, simulations/ in virtual time."""

from __future__ import annotations

import itertools
import math
import random
from bisect import insort
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from gossip import staleness
from gossip.clock import ZERO, HybridClock, Timestamp
from gossip.codec import entry_size
from gossip.config import Config
from gossip.counters import is_window_key
from gossip.errors import InvalidValue
from gossip.limits import check_key, check_value
from gossip.membership import LEFT, MemberInfo, Membership
from gossip.messages import (
    FORGOTTEN,
    Behind,
    Exchange,
    Message,
    Outgoing,
    Reply,
    Rumor,
    RumorItem,
    Snapshot,
    Summary,
    WriterDelta,
)
from gossip.push import Branch, Outbox
from gossip.stability import Stability
from gossip.store import JSON, WRITER_SEP, Entry, Store, writer_id

SummaryType = TypeVar("SummaryType", Exchange, Reply)


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
    retired: int = 0  # writers (ended lives) taken out of the digest once every member held them
    resets: int = 0  # times our state was found older than a peer's collections (R7c)
    refused_superseded: int = 0  # entries for keys we lack that our watermark already covers
    refused_stale: int = 0  # pushed entries too old to be news, for keys we lack
    dropped_unvouched: int = 0  # old entries our source could not vouch for, once caught up
    behind_peers: int = 0  # summaries refused because the peer's state predates our collections
    by_peer_failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ForgottenLife:
    """A member's life we forgot (R18): if it comes back, having missed what we collected
    since, its state may hold keys deleted meanwhile (R7c). Remembered for reap_after."""

    generation: int
    collected: Timestamp  # the newest entry we had collected when we forgot it
    at_ms: int


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
        # never claims (in its digest) to hold what it wrote in an earlier life.
        self._generation = generation
        self.writer = writer_id(node_id, generation)
        me = MemberInfo(node_id, address, generation, 0, tags=tuple(sorted((tags or {}).items())))
        self.membership = Membership(me, config, tuple(s for s in seeds if s != address))
        self.counters = Counters()
        self._peer_digests: dict[str, Mapping[str, Timestamp]] = {}
        # The last digests we heard, from any peer: part of our guess at what a peer whose
        # own digest we do not know holds (see _guess).
        self._recent_digests: deque[Mapping[str, Timestamp]] = deque(maxlen=4)
        # Items to push eagerly, per peer (R14, R21); our own go down a tree drawn once a round.
        self.outbox = Outbox(config, rng)
        self._tree: list[Branch] | None = None
        # Pushes that arrived before an earlier write of their writer, by prev, applied
        # once that gap is filled (by an exchange, or the missing push).
        self._pending: dict[str, list[RumorItem]] = {}
        # What each member holds, from its own digests: collection and retirement wait
        # until every member holds what they drop (R7a, R20).
        self.stability = Stability()
        self.forgotten: dict[str, ForgottenLife] = {}  # by node id
        # Peers found behind our collections: the evidence goes with our next exchange.
        self._behind: dict[str, Behind] = {}
        # A life that starts empty with seeds to join through (or is reset) catches up
        # from one peer, its source, before it judges or is judged by anyone (R7d). A
        # node with no seeds founds a cluster: there is nothing to catch up with.
        self.bootstrapping = bool(self.membership.seeds)
        self.source: str | None = None
        self._vetted: str | None = None  # the source whose first answer we checked our state against
        # A node restored from a snapshot asks for every retired writer once (R19).
        self.resync = False
        self.last_reset: ResetNotice | None = None
        self._retired_at: dict[str, int] = {}
        self._announce: dict[str, Timestamp] = {}  # retired writers some member still lists

    @property
    def announced(self) -> Mapping[str, Timestamp]:
        """Retired writers our summaries announce: those some member still lists (R20)."""
        return self._announce

    @property
    def _grace_ms(self) -> int:
        return int(self.config.tombstone_grace * 1000)

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
        self.store.advance(self.writer, prev, entry.ts)
        if self.config.eager_push:
            if self._tree is None:
                peers = [p for p in self.membership.live_addresses() if p != self.membership.me.address]
                self._tree = self.outbox.tree(peers)
            self.outbox.queue(RumorItem(entry, prev), self._tree)
        return entry

    def replication(self, address: str) -> Outgoing:
        """An Exchange carrying our own writes `address` lacks by its last digest (all of
        them if we have none): the digest of its Reply tells whether it now holds them
        (for `replicas=k`)."""
        peer = self._peer_digests.get(address, {})
        known = {w: m for w, m in self.store.watermarks.items() if w != self.writer}
        delta, more = self._delta_for({**known, self.writer: peer.get(self.writer, ZERO)})
        return Outgoing(address, self._summary(Exchange, delta, more=more))

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
        """Start a round: judge members, forget the long gone, collect and retire what
        every member holds, then one Exchange to each of `fanout` random peers (only to
        our source while we catch up)."""
        self.counters.rounds += 1
        for info in self.membership.update(now_ms):
            self.forgotten[info.id] = ForgottenLife(info.generation, self.store.collected, now_ms)
            self.stability.forget(info.id)
        reap_ms = self.config.reap_after * 1000
        for node in [n for n, life in self.forgotten.items() if now_ms - life.at_ms > reap_ms]:
            del self.forgotten[node]
        self._collect(now_ms)
        self._retire(now_ms)
        self.membership.beat()
        self._tree = None  # a new tree for our writes of this round
        # With eager push on, writes younger than one interval are left to the push, so
        # that an exchange repairs what it missed instead of sending everything twice.
        fresh = now_ms - int(self.config.gossip_interval * 1000) if self.config.eager_push else None
        if self.bootstrapping and self.source is not None:
            peers = [self.source]
        else:
            peers = self.membership.pick_peers(self.config.fanout, self.rng)
        guess = self._guess(now_ms)  # once a round, for the peers whose digest we do not know
        return [Outgoing(a, self._exchange_for(a, guess, fresh)) for a in peers]

    def _exchange_for(self, address: str, guess: Mapping[str, Timestamp], fresh: int | None) -> Exchange:
        behind = self._behind.get(address)
        member = self.membership.by_address(address)
        if behind is None and member is not None:
            behind = self._forgotten_evidence(member.info)
        if behind is not None or self.bootstrapping:
            # Nothing of ours for a peer that must reset first (our delta could make its
            # stale state look current); a catching-up node's deltas are not taken (R7d).
            return self._summary(Exchange, (), behind=behind)
        delta, more = self._delta_for(self._peer_digests.get(address, guess), fresh)
        return self._summary(Exchange, delta, more=more)

    def _guess(self, now_ms: int) -> dict[str, Timestamp]:
        """What a peer whose digest we do not know probably holds: not what one of the
        last few digests we heard lacks and, with eager push off, not the news (what was
        written in the last few rounds, see news_rounds). So without eager push news
        goes to every peer we pick, as in rumor mongering; with it, the push has
        already carried the news and the exchange only repairs."""
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
        return [Outgoing(a, self._summary(Exchange, ())) for a in self.membership.live_addresses()]

    def handle(self, message: Message, now_ms: int) -> Reply | None:
        """Serve a message from a peer: an Exchange gets a Reply, a Rumor nothing.
        Raises PeerError (and applies nothing) if any part of it is unacceptable."""
        if isinstance(message, Rumor):
            self._accept_rumor(message, now_ms)
            return None
        if isinstance(message, Reply):
            self.on_reply(message.sender.address, message, now_ms)
            return None
        behind = self._take_summary(message, now_ms)
        self.counters.exchanges_served += 1
        if behind is not None:  # it could bring deleted keys back: take nothing, tell it
            return self._summary(Reply, (), behind=behind)
        self._peer_digests[message.sender.address] = message.digest
        self._recent_digests.append(message.digest)
        if self.bootstrapping and not message.bootstrap:
            return self._summary(Reply, ())  # our deltas are not taken until we have caught up
        newcomer = message.bootstrap or message.resync
        delta, more = self._delta_for(message.digest, newcomer=newcomer)
        return self._summary(Reply, delta, more=more, newcomer=newcomer)

    def on_reply(self, address: str, reply: Reply, now_ms: int) -> None:
        behind = self._take_summary(reply, now_ms)
        if behind is not None:
            self._behind[address] = behind
            self._peer_digests.pop(address, None)
            return
        self._peer_digests[address] = reply.digest
        self._recent_digests.append(reply.digest)

    def on_failure(self, address: str) -> None:
        """An exchange with `address` failed (timeout, refused, refusal)."""
        self.counters.failures += 1
        failures = self.counters.by_peer_failures
        failures[address] = failures.get(address, 0) + 1
        self._peer_digests.pop(address, None)
        if address == self.source:
            self.source = None  # catch up from whoever answers next

    def _summary(
        self, kind: type[SummaryType], delta: tuple[WriterDelta, ...], *, more: bool = False,
        behind: Behind | None = None, newcomer: bool = False,
    ) -> SummaryType:  # fmt: skip
        """Our digest, view and collection state, around `delta`. A newcomer (catching
        up) is told of every retired writer and every collection, not only the news."""
        store, limit = self.store, self.config.max_members_per_message
        retired = self._announce
        if newcomer:  # every retired writer, those we still hold entries of first
            sent = [d.origin for d in delta if d.origin in store.retired]
            rest = (w for w in store.retired if w not in sent)
            retired = {w: store.retired[w] for w in itertools.islice(itertools.chain(sent, rest), limit)}
        # The horizon of writers in our digest; a newcomer adopts that of retired ones too.
        horizon = {w: t for w, t in store.horizon.items()
                   if w in store.watermarks or (newcomer and w in retired)}  # fmt: skip
        view = self.membership.view(self.rng)
        return kind(
            self.membership.me, dict(store.watermarks), tuple(view), delta, horizon, retired,
            store.collected, self.bootstrapping, self.resync, more, behind,
        )  # fmt: skip

    def _delta_for(
        self, peer: Mapping[str, Timestamp], until_wall: int | None = None, newcomer: bool = False
    ) -> tuple[tuple[WriterDelta, ...], bool]:
        """What a peer with digest `peer` lacks, per writer in ts order, cut at the byte
        and entry budgets (and before entries written after `until_wall`, if given), and
        whether it was cut. Retired writers go to a newcomer, and to a peer that lists them
        short of their end (R20). Writers are visited in random order so that no writer
        starves when every message is cut."""
        budget = self.config.delta_budget_bytes
        room = self.config.max_entries_per_message
        marks = dict(self.store.watermarks)
        marks.update((w, end) for w, end in self.store.retired.items() if newcomer or w in peer)
        behind = [o for o, mark in marks.items() if mark > peer.get(o, ZERO)]
        self.rng.shuffle(behind)
        deltas = []
        cut = False
        for origin in behind:
            base, mine = peer.get(origin, ZERO), marks[origin]
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
            if not taken and (young or origin in self.store.retired):
                continue  # (a retired writer's end travels in the summary's retired map)
            upto = taken[-1].ts if cut or young else mine
            deltas.append(WriterDelta(origin, base, upto, tuple(taken)))
            if cut:
                break
        return tuple(deltas), cut

    # -- taking in a peer's summary (R7c, R7d) -----------------------------------------------

    def _take_summary(self, message: Summary, now_ms: int) -> Behind | None:
        """Take in a peer's digest, view and delta. Returns evidence (and applies none of
        its delta) if the peer's state predates our collections; resets us instead if
        ours predates its. Raises PeerError, having applied nothing, on a bad timestamp."""
        self._check_clock(message, now_ms)
        sender = message.sender
        self.membership.merge([sender, *message.members], now_ms)
        # Neither side judges a node that is catching up: it holds only its source's state.
        theirs = None if message.bootstrap or self.bootstrapping else self._evidence_against(message)
        mine = self._evidence_for_us(message)
        if mine is not None and (theirs is None or staleness.yields(self.store, self.id, message)):
            self._reset(now_ms, sender.address, mine)
            return None
        if self.bootstrapping:
            if self.source is None and isinstance(message, Reply):
                self.source = sender.address  # the first peer that answers
            if sender.address == self.source:
                self._catch_up(message, now_ms)
            return None
        self.stability.hear(sender, message.digest, message.retired)
        if message.bootstrap:
            self._behind.pop(sender.address, None)
            return None  # its delta is not taken until it has caught up
        if theirs is not None:
            self.counters.behind_peers += 1
            return theirs
        self._behind.pop(sender.address, None)
        self._merge_collections(message, now_ms)
        self._apply_deltas(message.delta, now_ms)
        return None

    def _evidence_for_us(self, message: Summary) -> Behind | None:
        """Whether our state predates the sender's collections: by its own evidence, or
        by the horizon it sends (a node catching up only heeds being forgotten)."""
        claim = message.behind
        heeded = claim is not None and (claim.reason == FORGOTTEN or not self.bootstrapping)
        if claim is not None and heeded and staleness.holds_for(self.store, claim, self.id, self._generation):
            return claim
        if self.bootstrapping or message.bootstrap:
            return None
        return staleness.against_us(self.store, message)

    def _evidence_against(self, message: Summary) -> Behind | None:
        """Whether the sender's state predates our collections (R7c), and the evidence."""
        forgotten = self._forgotten_evidence(message.sender)
        return forgotten or staleness.against_peer(self.store, message, self._ended)

    def _check_clock(self, message: Summary, now_ms: int) -> None:
        check = self.clock.check
        for ts in message.digest.values():
            check(ts, now_ms)
        for ts in message.horizon.values():
            check(ts, now_ms)
        for ts in message.retired.values():
            check(ts, now_ms)
        for delta in message.delta:
            check(delta.upto, now_ms)

    def _catch_up(self, message: Summary, now_ms: int) -> None:
        """A delta from our source while we catch up: take all of it, and what it has
        collected and retired; done once it had nothing more to send (R7d)."""
        if self._vetted != message.sender.address:  # first word from this source
            self._drop_unvouched(message, now_ms)
            self._vetted = message.sender.address
        self._apply_deltas(message.delta, now_ms)
        store = self.store
        for writer, mark in message.horizon.items():
            if mark > store.horizon.get(writer, ZERO):
                store.horizon[writer] = mark
        # Only an answer to our own request carries every retired writer (the newcomer's share).
        complete = isinstance(message, Reply) and not message.more
        self._take_retired(message, complete, now_ms)
        self.stability.hear(message.sender, message.digest, message.retired)
        # A source still catching up itself may lack what others hold: it completes us
        # only if nothing was ever collected or retired on either side (a cold start).
        fresh = not (message.horizon or message.retired or store.horizon or store.retired)
        if complete and all(store.coverage(w) >= m for w, m in message.digest.items()) and (
            fresh or not message.bootstrap
        ):
            self.bootstrapping = False
            self.source = self._vetted = None

    def _drop_unvouched(self, source: Summary, now_ms: int) -> None:
        """Before we take a source's state: a live value we hold that it cannot vouch for
        (its digest does not reach that far in the writer's history) and that is no newer
        than its newest collection (our writes while we could not reach it, pushes from
        nodes that were away) may have been deleted, and the delete collected, meanwhile:
        drop it (R7d), and take the source's version, if any. Nothing newer than that
        collection can have been; a delete or an expired value brings nothing back."""
        limit = source.collected
        for entry in list(self.store.entries()):
            vouched = source.digest.get(entry.origin, source.retired.get(entry.origin, ZERO))
            if vouched < entry.ts <= limit and entry.is_live(now_ms):
                self.store.drop(entry)
                self.counters.dropped_unvouched += 1

    def _take_retired(self, message: Summary, complete: bool, now_ms: int) -> None:
        """Retired writers a newcomer's answer brings: each we now hold to its end is
        retired here too, and, once the answer is complete, so is each of which the peer
        sent nothing (none of its entries is left): we hold all it holds of them."""
        store = self.store
        for writer, end in message.retired.items():
            mine = store.watermarks.get(writer)
            if mine == end or (complete and mine is None and writer not in store.retired):
                self._retire_writer(writer, end, now_ms)

    def _merge_collections(self, message: Summary, now_ms: int) -> None:
        """A peer we are not behind: what it collected, we hold past already, so its
        horizon becomes ours too (we can judge others by it); a writer it retired that we
        hold to its end, we retire too; one it holds more of than we retired, we take back
        into the digest, to receive the rest (R20)."""
        store = self.store
        for writer, mark in message.horizon.items():
            if mark > store.horizon.get(writer, ZERO) and store.coverage(writer) >= mark:
                store.horizon[writer] = mark
        for writer, end in message.retired.items():
            if store.watermarks.get(writer) == end:  # (holding more, we spread it instead)
                self._retire_writer(writer, end, now_ms)
        for writer, theirs in (*message.digest.items(), *message.retired.items()):
            if store.retired.get(writer, theirs) < theirs:
                store.unretire(writer)
        if self.resync and isinstance(message, Reply) and not message.more:
            self._take_retired(message, True, now_ms)
            self.resync = False

    def _forgotten_evidence(self, member: MemberInfo) -> Behind | None:
        """A life we forgot, back while we have collected since: its state may hold keys
        deleted meanwhile."""
        forgotten = self.forgotten.get(member.id)
        if forgotten is None or member.generation > forgotten.generation:
            return None
        if self.store.collected <= forgotten.collected:
            return None
        return Behind(FORGOTTEN, member.id, Timestamp(member.generation, 0))

    def _reset(self, now_ms: int, source: str, evidence: Behind) -> None:
        """Our state predates collections a peer made (we were forgotten, or restored
        old state): what we hold could bring deleted keys back. Drop it all and catch up
        from that peer, as a new life: a new generation, a new writer. Writes we took
        that no other node holds are lost with it."""
        self._generation = max(now_ms, self._generation + 1)
        self.writer = writer_id(self.id, self._generation)
        self.membership.me = replace(self.membership.me, generation=self._generation, heartbeat=0)
        self.store.clear()
        self.stability.clear()
        self.outbox.clear()
        self._tree = None
        self._pending.clear()
        self._peer_digests.clear()
        self._recent_digests.clear()
        self._behind.clear()
        self.forgotten.clear()  # judged against the state we drop; our source judges for us now
        self._retired_at.clear()
        self._announce = {}
        self.bootstrapping, self.source, self._vetted = True, source, None
        self.counters.resets += 1
        self.last_reset = ResetNotice(evidence, source, now_ms)

    # -- collection and retirement (R7a, R20) ------------------------------------------------

    def _collect(self, now_ms: int) -> None:
        if not self._knows_cluster() or not self.store.has_ripe(now_ms):
            return
        members = [m.info for m in self.membership.members.values()]
        store, stability = self.store, self.stability

        def stable(writer: str) -> Timestamp:
            if writer in store.retired:
                return store.retired[writer]
            mine = store.watermark(writer)
            return min(mine, stability.coverage(members, writer)) if members else mine

        self.counters.collected += store.collect(now_ms, stable)

    def _knows_cluster(self) -> bool:
        """Whether we know whom to ask before collecting or retiring: not while catching
        up, nor with seeds but no member met yet (a node restarted from its data)."""
        return not self.bootstrapping and bool(self.membership.members or not self.membership.seeds)

    def _ended(self, writer: str) -> bool:
        """Whether `writer`'s life is over: its node started a newer life, left, or was
        forgotten. (A writer we know nothing of may be a live node not yet met.)"""
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
        forgotten = self.forgotten.get(node)
        return forgotten is not None and forgotten.generation >= generation

    def _retire(self, now_ms: int) -> None:
        """Take ended writers that every member holds to the same end out of the digest,
        so that digests track live nodes, not history (R20). A retired writer is
        announced while some member still lists it, and forgotten once none does, none
        of its entries is left here, and reap_after has passed."""
        store = self.store
        if self._knows_cluster():
            members = [m.info for m in self.membership.members.values()]
            for writer, upto in list(store.watermarks.items()):
                if self._ended(writer) and self.stability.all_hold(members, writer, upto):
                    self._retire_writer(writer, upto, now_ms)
        for writer in [w for w in self._pending if w in store.retired]:
            del self._pending[writer]  # its missing writes are gone for good
        for writer in [w for w in self._retired_at if w not in store.retired]:
            del self._retired_at[writer]  # taken back into the digest (Store.merge)
        reap_ms = self.config.reap_after * 1000
        announce = {}
        for writer, upto in list(store.retired.items()):
            if self.stability.listed_by_any(writer):
                announce[writer] = upto
                continue
            since = self._retired_at.setdefault(writer, now_ms)
            if now_ms - since > reap_ms and not store.holds_any(writer):
                store.forget_writer(writer)
                del self._retired_at[writer]
        self._announce = announce

    def _retire_writer(self, writer: str, upto: Timestamp, now_ms: int) -> None:
        self.store.retire(writer, upto)
        self._retired_at[writer] = now_ms
        self.counters.retired += 1

    def _apply_deltas(self, deltas: Iterable[WriterDelta], now_ms: int) -> None:
        """Apply each writer's delta that starts where our history of it ends (R10): one
        that starts past it (the sender guessed our digest wrong) is left for the next
        exchange, so that we never hold a writer's entry above a gap in its history."""
        for delta in deltas:
            if self.store.coverage(delta.origin) < delta.base:
                continue
            for entry in delta.entries:
                self._apply(entry, now_ms)
            self.store.advance(delta.origin, delta.base, delta.upto)
            self._drain_pending(delta.origin, now_ms)

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
                if origin in broken:
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
        forgotten = {node: life.generation for node, life in self.forgotten.items()}
        return Snapshot(self.clock.last, dict(store.watermarks), dict(store.horizon),
                        tuple(store.entries()), dict(store.retired), forgotten)  # fmt: skip

    def restore(self, snap: Snapshot, now_ms: int) -> None:
        """Start from a snapshot (before talking to anyone): its entries, what we held
        completely, what we had collected and retired, and a clock above all we ever
        wrote. A node with state does not catch up from scratch: peers judge it (R7c)."""
        for entry in snap.entries:
            self.store.merge(entry)
        self.store.watermarks.update(snap.watermarks)
        self.store.horizon.update(snap.horizon)
        self.store.retired.update(snap.retired)
        self._retired_at.update(dict.fromkeys(snap.retired, now_ms))
        for node, generation in snap.forgotten.items():
            self.forgotten[node] = ForgottenLife(generation, self.store.collected, now_ms)
        if snap.clock > self.clock.last:
            self.clock.last = snap.clock
        self.bootstrapping = not (snap.entries or snap.watermarks or snap.retired)
        # Our snapshot may predate retirements of writers we never listed: ask once (R19).
        self.resync = not self.bootstrapping

    # -- reading the state ------------------------------------------------------------------

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return self.store.state_hash(now_ms)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return self.store.live(now_ms)
