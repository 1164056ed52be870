"""Eager push (docs/PROTOCOL.md, R14, R15, R21): writes travel down random trees, and
what waits for a peer is batched, so that under load the number of messages stops
growing with the number of writes.

Each item to push is queued for the peer that heads its part of the tree, together with
the rest of that part (its `cover`, which that peer passes it on to in turn). A peer has
at most one push in flight: what is queued for it while one is on its way leaves with the
next, at most one entry per key and writer (the newest), chained so that the receiver can
still move its watermark. At a low rate a lone write leaves at once. A push that was not
delivered goes on to the next peer of each of its groups.

The outbox keeps these rules for every driver (node/, the simulator, the tests' networks):
`take` marks each push it returns as in flight, and the driver reports with `ended` when
it is over, delivered or not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Outgoing, Rumor, RumorGroup, RumorItem
from gossip.wire_encode import entry_size

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
    items = sorted(items, key=lambda i: i.entry.stamp)
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
    """Items waiting to be pushed, per peer, then per cover; and the push in flight to
    each peer."""

    def __init__(self, config: Config, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self._queued: dict[str, Sections] = {}  # by the peer to push to
        self._in_flight: dict[str, Outgoing] = {}  # by peer: the push on its way to it
        self._tree: list[Branch] | None = None  # for our own writes: drawn at the first of a round

    def idle(self) -> bool:
        """Whether nothing waits to be pushed and no push is in flight."""
        return not self._queued and not self._in_flight

    def ready(self) -> bool:
        """Whether `take` has a push to give: items wait for a peer with none in flight."""
        return any(head not in self._in_flight for head in self._queued)

    def clear(self) -> None:
        """Drop all that waits, and the marks of the pushes in flight (a reset: what they
        carry is of the state dropped). Their peers are free at once; a push sent before
        ends later as a stranger (`ended`), neither freeing a peer nor rerouted."""
        self._queued.clear()
        self._in_flight.clear()

    def forget_in_flight(self) -> None:
        """The pushes in flight will never be reported ended (their driver stopped, as
        the simulator's crash drops a node's pending events): their peers are free."""
        self._in_flight.clear()

    def tree(self, peers: Sequence[str]) -> list[Branch]:
        """A random tree over `peers`, for our own writes."""
        shuffled = list(peers)
        self.rng.shuffle(shuffled)
        return split(shuffled, self.config)

    def queue_own(self, item: RumorItem, peers: Callable[[], Sequence[str]]) -> None:
        """One of our own writes, down the tree of this round (over `peers()`, drawn at
        the round's first write)."""
        if self._tree is None:
            self._tree = self.tree(peers())
        self.queue(item, self._tree)

    def new_tree(self) -> None:
        """Our next write draws a new tree (each round; a new life)."""
        self._tree = None

    def queue(self, item: RumorItem, branches: list[Branch]) -> None:
        for head, cover in branches:
            self._queued.setdefault(head, {}).setdefault(cover, []).append(item)

    def relay(self, item: RumorItem, cover: Cover) -> None:
        """Our part of a tree we are in: pass the item on over `cover`."""
        if cover:
            self.queue(item, split(cover, self.config))

    def take(self, me: MemberInfo) -> list[Outgoing]:
        """A push for each peer that has items queued and no push in flight: all that
        waits for it, coalesced, up to the message budget (the rest waits for the next).
        Each is in flight until `ended`."""
        out = []
        for head in [h for h in self._queued if h not in self._in_flight]:
            sections = self._queued.pop(head)
            groups, rest = self._pack(sections)
            if rest:
                self._queued[head] = rest
            push = Outgoing(head, Rumor(me, tuple(groups)))
            self._in_flight[head] = push
            out.append(push)
        return out

    def ended(self, push: Outgoing, delivered: bool) -> None:
        """A push from `take` is over: its peer is free for the next. One not delivered
        goes on to the next peer of each of its groups (`_requeue`). The end of a push
        that is no longer the one in flight to its peer (its mark was forgotten) changes
        nothing."""
        if self._in_flight.get(push.address) is not push:
            return
        del self._in_flight[push.address]
        if not delivered and isinstance(push.message, Rumor):
            self._requeue(push.message)

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

    def _requeue(self, rumor: Rumor) -> None:
        """A push that could not be delivered: each group goes to the next peer of its
        cover instead, so one dead member does not cut off the tree below it."""
        for group in rumor.groups:
            if group.cover:
                self.queue_all(group.items, group.cover[0], group.cover[1:])

    def queue_all(self, items: Sequence[RumorItem], head: str, cover: Cover) -> None:
        self._queued.setdefault(head, {}).setdefault(cover, []).extend(items)
