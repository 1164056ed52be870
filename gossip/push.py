"""Eager push (docs/PROTOCOL.md, R14, R15, R21): writes travel down random trees, and
what waits for a peer is batched, so that under load the number of messages stops
growing with the number of writes.

Each item to push is queued for the peer that heads its part of the tree, together with
the rest of that part (its `cover`, which that peer passes it on to in turn). A peer has
at most one push in flight: what is queued for it while one is on its way leaves with the
next, at most one entry per key and writer (the newest), chained so that the receiver can
still move its watermark. At a low rate a lone write leaves at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence

from gossip.clock import Timestamp
from gossip.codec import entry_size
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Outgoing, Rumor, RumorGroup, RumorItem

Cover = tuple[str, ...]
Branch = tuple[str, Cover]  # the peer heading a part of the tree, and the rest of that part
Sections = dict[Cover, list[RumorItem]]  # what waits for one peer


def split(peers: Sequence[str], config: Config) -> list[Branch]:
    """`peers` in `fanout` parts (more if a part would not fit in a message), each headed
    by its first peer: a tree in which every peer is reached once."""
    count = max(config.fanout, math.ceil(len(peers) / config.max_members_per_message))
    parts = [peers[i::count] for i in range(count)]
    return [(part[0], tuple(part[1:])) for part in parts if part]


def coalesce(items: list[RumorItem]) -> list[RumorItem]:
    """Only the newest item per (writer, key), in timestamp order. An item that followed a
    dropped one now follows what that one followed: a receiver holding the writer's
    history up to there holds, once the batch is applied, all of it up to each item (a
    dropped entry is beaten by a later one of the same batch)."""
    items = sorted(items, key=lambda i: i.entry.ts)
    newest = {(i.entry.origin, i.entry.key): i for i in items}
    bridged: dict[tuple[str, Timestamp], Timestamp] = {}  # (writer, dropped ts) -> its prev
    out = []
    for item in items:
        origin = item.entry.origin
        prev = bridged.get((origin, item.prev), item.prev)
        if newest[(origin, item.entry.key)] is not item:
            bridged[(origin, item.entry.ts)] = prev
        else:
            out.append(item if prev == item.prev else RumorItem(item.entry, prev))
    return out


class Outbox:
    """Items waiting to be pushed, per peer, then per cover."""

    def __init__(self, config: Config, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self._queued: dict[str, Sections] = {}  # by the peer to push to

    def __bool__(self) -> bool:
        return bool(self._queued)

    def clear(self) -> None:
        self._queued.clear()

    def tree(self, peers: Sequence[str]) -> list[Branch]:
        """A random tree over `peers`, for our own writes."""
        shuffled = list(peers)
        self.rng.shuffle(shuffled)
        return split(shuffled, self.config)

    def queue(self, item: RumorItem, branches: list[Branch]) -> None:
        for head, cover in branches:
            self._queued.setdefault(head, {}).setdefault(cover, []).append(item)

    def relay(self, item: RumorItem, cover: Cover) -> None:
        """Our part of a tree we are in: pass the item on over `cover`."""
        if cover:
            self.queue(item, split(cover, self.config))

    def take(self, me: MemberInfo, busy: Collection[str] = ()) -> list[Outgoing]:
        """A push for each peer that has items queued and no push in flight (`busy`):
        all that waits for it, coalesced, up to the message budget (the rest waits for
        the next)."""
        out = []
        for head in [h for h in self._queued if h not in busy]:
            sections = self._queued.pop(head)
            groups, rest = self._pack(sections)
            if rest:
                self._queued[head] = rest
            out.append(Outgoing(head, Rumor(me, tuple(groups))))
        return out

    def _pack(self, sections: Sections) -> tuple[list[RumorGroup], Sections]:
        budget, room = self.config.delta_budget_bytes, self.config.max_entries_per_message
        groups: list[RumorGroup] = []
        rest: Sections = {}
        for cover, queued in sections.items():
            items = coalesce(queued)
            budget -= sum(len(a) + 3 for a in cover)
            taken = 0
            for item in items:
                size = entry_size(item.entry) + 64
                if (groups or taken) and (size > budget or room == 0):
                    break
                budget -= size
                room -= 1
                taken += 1
            if taken:
                groups.append(RumorGroup(cover, tuple(items[:taken])))
            if taken < len(items):
                rest[cover] = items[taken:]
        return groups, rest

    def requeue(self, rumor: Rumor) -> bool:
        """A push that could not be delivered: each group goes to the next peer of its
        cover instead, so one dead member does not cut off the tree below it. Whether
        anything was requeued."""
        again = False
        for group in rumor.groups:
            if group.cover:
                self.queue_all(group.items, group.cover[0], group.cover[1:])
                again = True
        return again

    def queue_all(self, items: Sequence[RumorItem], head: str, cover: Cover) -> None:
        self._queued.setdefault(head, {}).setdefault(cover, []).extend(items)
