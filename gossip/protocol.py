"""One node's protocol, free of I/O: inputs are writes, messages and the time; outputs
are messages to send. node/ drives it over HTTP, simulations/ in virtual time."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from gossip.clock import ZERO, HybridClock, Timestamp
from gossip.codec import entry_size
from gossip.config import Config
from gossip.errors import InvalidValue
from gossip.limits import check_key, check_value
from gossip.membership import MemberInfo, Membership
from gossip.messages import Exchange, Message, Reply, Rumor, RumorItem, Snapshot, WriterDelta
from gossip.store import JSON, Entry, Store, writer_id

Summary = TypeVar("Summary", Exchange, Reply)


@dataclass(frozen=True, slots=True)
class Outgoing:
    address: str
    message: Message


@dataclass
class Counters:
    """What happened, for /health-style reporting and for tests."""

    rounds: int = 0
    exchanges_served: int = 0
    rumors_received: int = 0
    entries_applied: int = 0
    rejected: int = 0
    failures: int = 0
    collected: int = 0  # tombstones and expired entries dropped after the grace period
    resets: int = 0  # times we were behind a peer's collection and started afresh
    refused_old: int = 0  # entries older than the grace period for keys we do not hold
    by_peer_failures: dict[str, int] = field(default_factory=dict)


def news_rounds(members: int) -> int:
    """How many rounds a write counts as news, pushed to peers whose digest we do not
    know: twice the rounds push gossip needs to reach `members` nodes (log2 N + ln N,
    Pittel), which leaves room for lost messages and the slowest nodes. (Counting dead
    members too, as the caller does, only lengthens it a little.)"""
    return math.ceil(2 * (math.log2(members) + math.log(members))) if members > 1 else 1


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
    ) -> None:
        self.config = config
        self.id = node_id
        self.rng = rng
        self.clock = HybridClock(config.max_offset_ms)
        self.store = Store()
        generation = now_ms if generation is None else generation
        # Each life of a node writes as a writer of its own, so a node restarted empty
        # never claims (in its digest) to hold what it wrote in an earlier life.
        self._generation = generation
        self.writer = writer_id(node_id, generation)
        me = MemberInfo(node_id, address, generation, 0)
        self.membership = Membership(me, config, tuple(s for s in seeds if s != address))
        self.counters = Counters()
        self._peer_digests: dict[str, Mapping[str, Timestamp]] = {}
        # The last digests we heard, from any peer: part of our guess at what a peer whose
        # own digest we do not know holds (see _guess).
        self._recent_digests: deque[Mapping[str, Timestamp]] = deque(maxlen=4)
        # Items to push eagerly, each with the peers to cover (None: every peer).
        self._rumors: list[tuple[RumorItem, tuple[str, ...] | None]] = []
        self._last_write: RumorItem | None = None
        # Peers found behind our tombstone collection: told to reset in our next exchange.
        self._must_reset: set[str] = set()
        # Wall ms of our last completed exchange: a node away longer than the grace
        # period may hold keys whose tombstones the others have collected since.
        self.last_contact: int | None = None
        self._reset_at = -(2**62)
        # Reset requests from peers that saw our digest before we reset are stale for
        # a few rounds afterwards.
        self._reset_quiet_ms = int(max(5 * config.gossip_interval, 2 * config.request_timeout) * 1000)

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
        self._last_write = RumorItem(entry, prev)
        if self.config.eager_push:
            self._rumors.append((self._last_write, None))
        return entry

    def push_last_write(self, addresses: list[str]) -> list[Outgoing]:
        """The latest local write, pushed straight to `addresses` (no relaying): each
        answer is an acknowledgement that that peer holds it (for `replicas=k`)."""
        if self._last_write is None:
            return []
        rumor = Rumor(self.membership.me, (self._last_write,))
        return [Outgoing(address, rumor) for address in addresses]

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
        """Start a round: judge members, collect old tombstones, then one Exchange to
        each of `fanout` random peers."""
        self.counters.rounds += 1
        self.membership.update(now_ms)
        self.counters.collected += self.store.collect(now_ms - self._grace_ms)
        self.membership.beat()
        out = []
        # With eager push on, writes younger than one interval are left to the push, so
        # that an exchange repairs what it missed instead of sending everything twice.
        fresh = now_ms - int(self.config.gossip_interval * 1000) if self.config.eager_push else None
        guess = self._guess(now_ms)  # once a round, for the peers whose digest we do not know
        for address in self.membership.pick_peers(self.config.fanout, self.rng):
            delta = self._delta_for(self._peer_digests.get(address, guess), fresh)
            reset = address in self._must_reset
            self._must_reset.discard(address)
            out.append(Outgoing(address, self._summary(Exchange, delta, reset)))
        return out

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
            guess = {writer: min(mark, news) for writer, mark in guess.items()}
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
        stale = self._accept_summary(message, now_ms)
        self.counters.exchanges_served += 1
        self._peer_digests[message.sender.address] = message.digest
        self._recent_digests.append(message.digest)
        if stale:  # it could bring deleted keys back: take nothing, tell it to reset
            return self._summary(Reply, (), reset=True)
        return self._summary(Reply, self._delta_for(message.digest))

    def on_reply(self, address: str, reply: Reply, now_ms: int) -> None:
        if self.last_contact is not None and now_ms - self.last_contact > self._grace_ms:
            self._reset(now_ms)  # back after a long absence: start afresh, as if told to
        self.last_contact = now_ms
        if self._accept_summary(reply, now_ms):
            self._must_reset.add(address)
        self._peer_digests[address] = reply.digest
        self._recent_digests.append(reply.digest)

    def on_failure(self, address: str) -> None:
        """An exchange with `address` failed (timeout, refused, refusal)."""
        self.counters.failures += 1
        failures = self.counters.by_peer_failures
        failures[address] = failures.get(address, 0) + 1
        self._peer_digests.pop(address, None)

    def _summary(self, kind: type[Summary], delta: tuple[WriterDelta, ...], reset: bool = False) -> Summary:
        digest = dict(self.store.watermarks)
        view = self.membership.view(self.config.max_members_per_message, self.rng)
        return kind(self.membership.me, digest, tuple(view), delta, reset)

    def _delta_for(
        self, peer: Mapping[str, Timestamp], until_wall: int | None = None
    ) -> tuple[WriterDelta, ...]:
        """What a peer with digest `peer` lacks, per writer in ts order, cut at the byte
        and entry budgets (and before entries written after `until_wall`, if given).
        Writers are visited in random order so that no writer starves when every
        message is cut."""
        budget = self.config.delta_budget_bytes
        room = self.config.max_entries_per_message
        behind = [o for o, mark in self.store.watermarks.items() if mark > peer.get(o, ZERO)]
        self.rng.shuffle(behind)
        deltas = []
        for origin in behind:
            base, mine = peer.get(origin, ZERO), self.store.watermarks[origin]
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
            if young and not taken:
                continue
            upto = taken[-1].ts if cut or young else mine
            deltas.append(WriterDelta(origin, base, upto, tuple(taken)))
            if cut:
                break
        return tuple(deltas)

    def _accept_summary(self, message: Exchange | Reply, now_ms: int) -> bool:
        """Take in a peer's view and delta; True (and the delta left out) if the peer is
        behind our tombstone collection."""
        for ts in message.digest.values():
            self.clock.check(ts, now_ms)
        for delta in message.delta:
            self.clock.check(delta.upto, now_ms)
        self.membership.merge([message.sender, *message.members], now_ms)
        if message.reset and now_ms - self._reset_at > self._reset_quiet_ms:
            self._reset(now_ms)  # (a reset asked for before our last one took effect is moot)
        if self.store.behind_horizon(message.digest):
            return True
        self._must_reset.discard(message.sender.address)  # it caught up meanwhile
        for delta in message.delta:
            for entry in delta.entries:
                self._apply(entry, now_ms)
            self.store.advance(delta.origin, delta.base, delta.upto)
        return False

    def _forgotten(self, entry: Entry, now_ms: int) -> bool:
        """An entry older than the grace period, for a key we do not hold, once we have
        collected tombstones: it may be one of the keys those deleted (a peer that was
        away passing on its old copy), so it must not come back. A node with nothing
        collected (new, or just reset) takes everything."""
        return bool(self.store.horizon) and entry.ts.wall < now_ms - self._grace_ms

    def _collectable(self, entry: Entry, now_ms: int) -> bool:
        """A delete (or expiry) already past the grace period: collected at once if kept."""
        mortal_at = entry.mortal_at
        return mortal_at is not None and mortal_at < now_ms - self._grace_ms

    def _reset(self, now_ms: int) -> None:
        """We were away longer than the grace period: tombstones we never saw are gone,
        so what we hold could bring deleted keys back. Drop it all and catch up from
        peers from scratch, writing from now on as a new writer (a stream that starts
        empty). Writes we took while away and never passed on are lost with it."""
        self._reset_at = now_ms
        self._generation = max(now_ms, self._generation + 1)
        self.writer = writer_id(self.id, self._generation)
        self.store.clear(horizon=True)
        self._last_write = None
        self._rumors.clear()
        self._peer_digests.clear()
        self._recent_digests.clear()
        self.counters.resets += 1

    def _apply(self, entry: Entry, now_ms: int) -> bool:
        self.clock.observe(entry.ts, now_ms)
        if self.store.get(entry.key) is None:  # R7c: old entries for a key we lack
            if self._forgotten(entry, now_ms):
                self.counters.refused_old += 1
                return False
            if self._collectable(entry, now_ms):
                # It removes nothing, and collecting it would raise our horizon, after
                # which a node catching up (new, or just reset) would refuse the old live
                # entries it still needs.
                return False
        if not self.store.merge(entry):
            return False
        self.counters.entries_applied += 1
        return True

    # -- eager push --------------------------------------------------------------------

    def _accept_rumor(self, rumor: Rumor, now_ms: int) -> None:
        for item in rumor.items:
            self.clock.check(item.entry.ts, now_ms)
        self.counters.rumors_received += 1
        self.membership.merge([rumor.sender], now_ms)
        for item in rumor.items:
            self._apply(item.entry, now_ms)
            self.store.advance(item.entry.origin, item.prev, item.entry.ts)
            if rumor.cover and self.config.eager_push:
                self._rumors.append((item, rumor.cover))  # our part of the tree

    def has_rumors(self) -> bool:
        return bool(self._rumors)

    def take_rumors(self) -> list[Outgoing]:
        """Pending pushes as Rumors. Each set of peers to cover (all live peers for our
        own writes) is shuffled and split into `fanout` groups; the first peer of each
        group is sent the items with the rest of its group to cover in turn. Called as
        often as the transport keeps up, so writes that land while a push is in flight
        share the next one."""
        pending, self._rumors = self._rumors, []
        by_cover: dict[tuple[str, ...] | None, list[RumorItem]] = {}
        for item, cover in pending:
            by_cover.setdefault(cover, []).append(item)
        out = []
        for cover, items in by_cover.items():
            peers = self.membership.live_addresses() if cover is None else list(cover)
            peers = [p for p in peers if p != self.membership.me.address]
            self.rng.shuffle(peers)
            # More groups in a cluster so large that a group would not fit in a message.
            count = max(self.config.fanout, -(-len(peers) // self.config.max_members_per_message))
            groups = [peers[i::count] for i in range(count)]
            for batch in self._batches(items):
                for group in groups:
                    if group:
                        out.append(Outgoing(group[0], Rumor(self.membership.me, batch, tuple(group[1:]))))
        return out

    def reroute(self, failed: Outgoing) -> Outgoing | None:
        """A push that could not be delivered goes to the next peer of its group, so one
        dead member does not cut off the part of the tree below it."""
        rumor = failed.message
        if not isinstance(rumor, Rumor) or not rumor.cover:
            return None
        return Outgoing(rumor.cover[0], Rumor(self.membership.me, rumor.items, rumor.cover[1:]))

    def _batches(self, items: list[RumorItem]) -> list[tuple[RumorItem, ...]]:
        batches: list[tuple[RumorItem, ...]] = []
        batch: list[RumorItem] = []
        budget = self.config.delta_budget_bytes
        for item in items:
            size = entry_size(item.entry) + 64
            if batch and (size > budget or len(batch) == self.config.max_entries_per_message):
                batches.append(tuple(batch))
                batch, budget = [], self.config.delta_budget_bytes
            batch.append(item)
            budget -= size
        if batch:
            batches.append(tuple(batch))
        return batches

    # -- durability --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        store = self.store
        return Snapshot(self.clock.last, dict(store.watermarks), dict(store.horizon),
                        tuple(store.entries()), self.last_contact)  # fmt: skip

    def restore(self, snap: Snapshot) -> None:
        """Start from a snapshot (before talking to anyone): its entries, what we held
        completely, what we had collected, and a clock above all we ever wrote."""
        for entry in snap.entries:
            self.store.merge(entry)
        self.store.watermarks.update(snap.watermarks)
        self.store.horizon.update(snap.horizon)
        if snap.clock > self.clock.last:
            self.clock.last = snap.clock
        self.last_contact = snap.last_contact

    # -- reading the state ------------------------------------------------------------------

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return self.store.state_hash(now_ms)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return self.store.live(now_ms)
