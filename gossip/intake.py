"""Entries coming in: a peer's deltas, applied where they follow on from the history we
hold of their writer (R10), and its pushes, applied likewise or held until the gap before
them is filled (R15, R21). Refuses what may be stale (R7b). Retiring a writer whose end a
delta brings is the lifecycle's call, made through `retire`."""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable

from gossip.clock import HybridClock, Timestamp
from gossip.config import Config
from gossip.messages import Rumor, RumorGroup, RumorItem, Summary, WriterDelta
from gossip.stats import Stats
from gossip.store import Entry, Store


def _prev(item: RumorItem) -> Timestamp:
    return item.prev


class Intake:
    def __init__(
        self, config: Config, store: Store, clock: HybridClock, stats: Stats,
        retire: Callable[[str, Timestamp], None],
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self.stats = stats
        self._retire = retire
        # Pushes that arrived before an earlier write of their writer, by prev, applied
        # once that gap is filled (by an exchange, or the missing push); while we catch
        # up, every push waits here until we are done (R7d).
        self.pending: dict[str, list[RumorItem]] = {}

    def check_clock(self, message: Summary | Rumor, now_ms: int) -> None:
        """Raise ClockSkewRejected if any timestamp a message carries is too far ahead of
        our clock (R3): taking it would drag our clock, and every write after, with it."""
        check = self._clock.check
        if isinstance(message, Rumor):
            for item in message.items:
                check(item.entry, now_ms)
            return
        for stamps in (message.digest, message.horizon, message.retired):
            for ts in stamps.values():
                check(ts, now_ms)
        for delta in message.delta:
            check(delta.upto, now_ms)

    def deltas(self, deltas: Iterable[WriterDelta], now_ms: int, catching_up: bool = False) -> None:
        """Apply each writer's delta that starts where our history of it ends (R10): one
        that starts past it (the sender guessed our digest wrong) is left for the next
        exchange, so that we never hold a writer's entry above a gap in its history. A
        delta that ends a writer the sender retired lets us retire it too. (An empty one
        that ends a retired writer we know nothing of is one nobody holds anything of,
        which we may have forgotten: a member leaves it; a node catching up takes it, to
        hold all its source holds.)"""
        store = self._store
        for delta in deltas:
            origin = delta.origin
            if store.coverage(origin) < delta.base:
                continue
            known = origin in store.watermarks or origin in store.retired
            if delta.final and not (delta.entries or known or catching_up):
                continue
            for entry in delta.entries:
                self.apply(entry, now_ms)
            store.advance(origin, delta.base, delta.upto)
            if delta.final and store.watermarks.get(origin) == delta.upto:
                self._retire(origin, delta.upto)
            if not catching_up:  # (catching up, held pushes wait until we are done)
                self.drain(origin, now_ms)

    def apply(self, entry: Entry, now_ms: int, pushed: bool = False) -> bool:
        """Merge an incoming entry. False only if it is refused as possibly stale: then
        the caller must not count it as held (no watermark moves past it)."""
        return self._apply(entry, entry.ts, now_ms, pushed)

    def _apply(self, entry: Entry, ts: Timestamp, now_ms: int, pushed: bool) -> bool:
        """apply(), given the entry's timestamp (an entry builds it anew when asked)."""
        self._clock.observe(ts, now_ms)
        if self._store.get(entry.key) is None:
            if ts <= self._store.coverage(entry.origin):
                # We held this writer's history past it, and the key is gone: something
                # newer replaced it, and has been collected since (R7b).
                self.stats.refused_superseded += 1
                return True
            if pushed and self.stale_push(entry):
                # A push is news; one as old as what we have collected may come from a
                # node that was away. Anti-entropy brings it if it is not stale (R7b).
                self.stats.refused_stale += 1
                return False
        if self._store.merge(entry):
            self.stats.entries_applied += 1
        return True

    def pushes(self, rumor: Rumor, now_ms: int, catching_up: bool) -> list[tuple[RumorItem, RumorGroup]]:
        """Take a push's items; those to pass on along the tree, each with its group."""
        # A writer with an item refused as stale moves no watermark in this push: a later
        # item of it may follow on from the refused one (R21).
        broken = {i.entry.origin for i in rumor.items if self.stale_push(i.entry)}
        taken = []
        for group in rumor.groups:
            for item in group.items:
                origin = item.entry.origin
                coverage = self._store.coverage(origin)
                if catching_up:
                    # Catching up, we take only what our source vouches for: a push waits,
                    # as one that runs ahead of its writer's history does, until we are
                    # done and hold that history (R7d, R15).
                    self.hold(item)
                elif origin in broken:
                    if not self.apply(item.entry, now_ms, pushed=True):
                        continue
                elif coverage >= item.prev or item.entry.stamp <= coverage:
                    self._apply_pushed(item, now_ms)
                    self.drain(origin, now_ms)
                else:  # an earlier write of its writer has not reached us yet (R15)
                    self.hold(item)
                taken.append((item, group))
        return taken

    def stale_push(self, entry: Entry) -> bool:
        """A pushed entry too old to be news, for a key we do not hold (R7b)."""
        store = self._store
        return store.get(entry.key) is None and store.coverage(entry.origin) < entry.stamp <= store.collected

    def _apply_pushed(self, item: RumorItem, now_ms: int) -> bool:
        entry = item.entry
        ts = entry.ts
        if not self._apply(entry, ts, now_ms, pushed=True):
            return False
        self._store.advance(entry.origin, item.prev, ts)
        return True

    def hold(self, item: RumorItem) -> None:
        pending = self.pending.setdefault(item.entry.origin, [])
        if len(pending) < self.config.max_entries_per_message:
            insort(pending, item, key=_prev)

    def drain_all(self, now_ms: int) -> None:
        for origin in list(self.pending):
            self.drain(origin, now_ms)

    def drain(self, origin: str, now_ms: int) -> None:
        """Apply held pushes of `origin` that now follow on from what we hold."""
        pending = self.pending.get(origin)
        while pending and pending[0].prev <= self._store.coverage(origin):
            self._apply_pushed(pending.pop(0), now_ms)
        if not pending:
            self.pending.pop(origin, None)

    def forget_retired(self) -> None:
        """Held pushes of writers since retired: what they wait for comes with the rest."""
        for writer in [w for w in self.pending if w in self._store.retired]:
            del self.pending[writer]
