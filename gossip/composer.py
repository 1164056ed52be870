"""What our messages carry: our digest, view (or a page of the roster), retired set and
collections around a delta, for a peer (an Exchange) or the sender of a request (a Reply);
and the delta a peer lacks, cut to one message."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TypeVar

from gossip import deltas
from gossip.clock import ZERO, Timestamp
from gossip.config import Config
from gossip.lives import Lives
from gossip.membership import MemberInfo, Membership
from gossip.messages import Behind, Exchange, ForgottenLife, Outgoing, Reply, Summary, WriterDelta
from gossip.peers import PeerBook
from gossip.retired import Holdings
from gossip.standing import Standing
from gossip.store import Store

SummaryType = TypeVar("SummaryType", Exchange, Reply)


class Composer:
    def __init__(
        self, config: Config, rng: random.Random, store: Store, membership: Membership, lives: Lives,
        peers: PeerBook, standing: Standing,
    ) -> None:
        self.config = config
        self.rng = rng
        self._store = store
        self._membership = membership
        self._lives = lives
        self._peers = peers
        self._standing = standing  # (catching up, we say so, and send no delta of ours)

    def exchange(self, address: str, guess: Mapping[str, Timestamp], now_ms: int) -> Exchange:
        """A round's Exchange for `address`: with what it lacks (by its last summary, else
        by `guess`), less what a push may still be carrying to it; or with the evidence
        that it is behind us and nothing else."""
        behind = self._peers.behind.get(address)
        member = self._membership.by_address(address)
        catchup = self._standing.catchup
        if behind is None and member is not None and catchup is None:
            behind = self._lives.evidence(member.info.id, member.info.generation, self._store.collected)
        if behind is not None or catchup is not None:
            # Nothing of ours for a peer that must reset first (our delta could make its
            # stale state look current); a catching-up node's deltas are not taken (R7d).
            return self.summary(Exchange, (), behind=behind, to=address)
        known = self._peers.holdings.get(address)
        peer = known or Holdings.guessed(guess, self._store.retired)
        delta, more = self.delta_for(peer, self.unpushed(self._peers.heard_ms[address] if known else now_ms))
        return self.summary(Exchange, delta, more=more, to=address)

    def replication(self, address: str) -> Outgoing:
        """An Exchange carrying our own writes `address` lacks by its last summary (all
        of them if we have none): the digest of its Reply tells whether it now holds them
        (for `replicas=k`)."""
        peer, writer, store = self._peers.holdings.get(address), self._lives.writer, self._store
        theirs = (peer.mark(writer) if peer is not None else None) or ZERO
        delta, more = deltas.cut(store, self.config, [(writer, theirs, store.watermark(writer))])
        return Outgoing(address, self.summary(Exchange, delta, more=more, to=address))

    def summary(
        self, kind: type[SummaryType], delta: tuple[WriterDelta, ...] = (), *, more: bool = False,
        behind: Behind | None = None, to: str | None = None, request: Summary | None = None,
    ) -> SummaryType:
        """Our digest, view, retired set and collection state, around `delta`, for the
        peer `to` (an Exchange) or the sender of `request` (a Reply). The retired set goes
        as a summary, with its bucket hashes when the peer's set may differ, and the
        buckets we know differ listed whole (R20); a node catching up asks for the roster
        and is answered with pages of it instead of a view (R7d)."""
        store, retired = self._store, self._store.retired
        theirs = request.retired_sum if request is not None else self._peers.retired.get(to or "")
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
        members, roster_end, forgotten, forgotten_writers = self._view_or_roster(request)
        lives, catchup = self._lives, self._standing.catchup
        return kind(
            self._membership.me, dict(store.watermarks), tuple(members), delta, horizon, listed,
            # (catching up, we hold nothing to be judged by: say what we know was collected)
            store.collected if catchup is None else catchup.known_collected(self._standing.collected),
            catchup is not None, more, behind,
            retired.summary(with_buckets=differ), 0 if lives.own_state else lives.lineage,
            catchup.roster if kind is Exchange and catchup is not None else None, roster_end, forgotten,
            forgotten_writers,
        )

    def _view_or_roster(
        self, request: Summary | None
    ) -> tuple[list[MemberInfo], bool | None, dict[str, ForgottenLife], dict[str, Timestamp]]:
        """A view (R13); or, for a node catching up that asks for it, a page of the
        roster: the members we know with ids after its cursor, and the lives and writers
        (the newest of these that fit) we forgot among them, so that it knows every member
        before it collects or forgets (R7d), and judges as we do (R7c)."""
        membership = self._membership
        if request is None or request.roster is None:
            return membership.view(self.rng), None, {}, {}
        after, limit = request.roster, self.config.max_members_per_message

        def on_page(name: str) -> bool:
            return name > after and (last is None or name <= last)

        page, end = membership.roster_page(after, limit - 1)
        last = page[-1].id if page and not end else None
        forgotten = {i: life for i, life in self._lives.forgotten.items() if on_page(i)}
        writers = [(w, h) for w, h in reversed(self._store.forgotten_writers.items()) if on_page(w)]
        return [membership.me, *page], end, forgotten, dict(reversed(writers[:limit]))

    def unpushed(self, heard_ms: int) -> int | None:
        """With eager push on, an Exchange leaves to the push the writes it may still be
        carrying, so that exchanges repair what pushes missed instead of sending everything
        twice (R12): those written after this wall time, one interval before the peer's
        summary we judge by was heard (`heard_ms`: a digest heard a while ago is judged as
        of then, and what came by push since is not sent again). None with eager push off."""
        if not self.config.eager_push:
            return None
        return heard_ms - int(self.config.gossip_interval * 1000)

    def delta_for(
        self, peer: Holdings, until_wall: int | None = None
    ) -> tuple[tuple[WriterDelta, ...], bool]:
        """What a peer lacks, by what its summary shows it holds (in a random order, R9),
        cut to one message (written before wall time `until_wall`, if given)."""
        behind = deltas.lacking(self._store, peer)
        self.rng.shuffle(behind)
        return deltas.cut(self._store, self.config, behind, until_wall)
