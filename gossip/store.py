"""Last-writer-wins entries (gossip/entry.py) by key, the per-writer log that deltas are
read from, and the watermarks that digests are made of. Rules: docs/PROTOCOL.md."""

from __future__ import annotations

import hashlib
import heapq
import itertools
from bisect import bisect_right, insort
from collections.abc import Callable, Iterator

from gossip.clock import ZERO, Timestamp
from gossip.entry import JSON as JSON
from gossip.entry import WRITER_SEP as WRITER_SEP
from gossip.entry import Entry as Entry
from gossip.jsontext import canonical
from gossip.remembered import remember_newest
from gossip.retired import RetiredSet

Digest = dict[str, Timestamp]  # writer -> the timestamp up to which we hold everything


def writer_id(node_id: str, generation: int) -> str:
    return f"{node_id}{WRITER_SEP}{generation}"


def _stamp(entry: Entry) -> tuple[int, int]:
    return (entry.wall, entry.counter)


def _plain(ts: Timestamp) -> tuple[int, int]:
    """The same object, typed as the entries' stamps are (for bisect against them)."""
    return ts


class Store:
    """Entries by key, plus, per writer, a log of its entries sorted by ts.

    A log item whose entry has been overwritten is stale and skipped on reading; stale
    items are dropped once they outnumber the live ones.
    """

    def __init__(self, grace_ms: int = 0, final_expiry: Callable[[str], bool] = lambda key: False) -> None:
        # Tombstones and expired entries wait grace_ms past their time before collection,
        # but for keys whose expiry is final: every version of such a key expires at the
        # same moment, so once it has, no copy anywhere can come back to life.
        self.grace_ms = grace_ms
        self._final_expiry = final_expiry
        # Each is called with every entry merge() takes, under the caller's lock: change
        # streams, metrics. Keep them quick, and never raise.
        self.listeners: list[Callable[[Entry], None]] = []
        self._clear()

    def _clear(self) -> None:
        self.version = getattr(self, "version", 0) + 1  # moves on every change
        self.cleared = getattr(self, "cleared", -1) + 1  # moves on every clear(), a reset
        self._entries: dict[str, Entry] = {}
        self._logs: dict[str, list[Entry]] = {}  # per writer, sorted by ts
        self._stale: dict[str, int] = {}
        self.watermarks: Digest = {}
        # Writers of ended lives no longer listed one by one (R20): where we hold them to.
        self.retired = RetiredSet()
        # Per writer, the newest of its entries collected here or by the peers we caught up
        # from (raised through raise_horizon), and the newest of all, which never falls,
        # even when a writer is forgotten.
        self.horizon: Digest = {}
        # The horizons of writers we forgot (R20), the newest MAX_FORGOTTEN: a peer
        # that still holds less of one (a node restored from an old snapshot) is behind (R7c).
        self.forgotten_writers: Digest = {}
        self._collected = ZERO
        # Tombstones and expiring entries by when they become ripe (lazily cleaned), then,
        # once ripe, per writer by ts, waiting until every member holds them.
        self._mortal: list[tuple[int, int, Entry]] = []
        self._ripe: dict[str, list[tuple[Timestamp, int, Entry]]] = {}
        self._pushed = itertools.count()  # a tie-break, so entries are never compared

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def entries(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def merge(self, entry: Entry) -> bool:
        """Keep whichever of ours and theirs wins; True if ours changed."""
        current = self._entries.get(entry.key)
        if current is not None and not entry.wins_over(current):
            return False
        self._entries[entry.key] = entry
        self.version += 1
        ended = self.retired.get(entry.origin)
        if ended is not None and entry.ts > ended:
            # More of a writer we retired (someone held more of it, or a forgotten node
            # still wrote): back into the digest, to receive and spread the rest.
            self.unretire(entry.origin)
        if current is not None:
            self._mark_stale(current.origin)
        if (at := self._ripe_at(entry)) is not None:
            heapq.heappush(self._mortal, (at, next(self._pushed), entry))
        log = self._logs.setdefault(entry.origin, [])
        if not log or (log[-1].wall, log[-1].counter) < (entry.wall, entry.counter):
            log.append(entry)  # the usual case: a writer's entries arrive in ts order
        else:
            insort(log, entry, key=_stamp)
        for listener in self.listeners:
            listener(entry)
        return True

    def _ripe_at(self, entry: Entry) -> int | None:
        """Wall ms from which the entry may be collected, once every member holds it."""
        at = entry.mortal_at
        if at is None or (not entry.deleted and self._final_expiry(entry.key)):
            return at
        return at + self.grace_ms

    def _mark_stale(self, origin: str) -> None:
        stale = self._stale.get(origin, 0) + 1
        log = self._logs[origin]
        if stale * 2 > len(log) and stale > 16:
            self._logs[origin] = [e for e in log if self._entries.get(e.key) is e]
            stale = 0
        self._stale[origin] = stale

    def drop(self, entry: Entry) -> None:
        """Forget an entry we hold (not a collection: the horizon does not move)."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
            self.version += 1
            self._mark_stale(entry.origin)

    def has_ripe(self, now_wall: int) -> bool:
        """Whether some tombstone or expired entry is old enough to be collected, if
        every member holds it (so that the caller computes that only when needed)."""
        return bool(self._ripe) or bool(self._mortal and self._mortal[0][0] < now_wall)

    def collect(self, now_wall: int, stable: Callable[[str], Timestamp]) -> int:
        """Drop tombstones and expired entries whose time (Entry.mortal_at, plus the
        grace but for final expiries) is before `now_wall` and whose timestamp is at most
        `stable(writer)`: the point up to which every member holds that writer's history.
        Raises the horizon; returns how many were dropped (R7a)."""
        while self._mortal and self._mortal[0][0] < now_wall:
            _, seq, entry = heapq.heappop(self._mortal)
            if self._entries.get(entry.key) is entry:
                heapq.heappush(self._ripe.setdefault(entry.origin, []), (entry.ts, seq, entry))
        dropped = 0
        for origin in list(self._ripe):
            waiting, mark = self._ripe[origin], stable(origin)
            while waiting and waiting[0][0] <= mark:
                entry = heapq.heappop(waiting)[2]
                if self._entries.get(entry.key) is not entry:
                    continue  # overwritten since
                del self._entries[entry.key]
                self.version += 1
                self._mark_stale(entry.origin)
                self.raise_horizon(entry.origin, entry.ts)
                dropped += 1
            if not waiting:
                del self._ripe[origin]
        return dropped

    @property
    def collected(self) -> Timestamp:
        """The newest entry collected here, by the peers we took horizons from, or at the
        end of a writer we forgot: what we know the cluster has dropped."""
        return self._collected

    def raise_collected(self, mark: Timestamp) -> None:
        """A source we took the whole state of knew of collections this recent (R7d)."""
        if mark > self._collected:
            self._collected = mark

    def holds_any_up_to(self, mark: Timestamp) -> bool:
        """Whether some entry we hold is no newer than `mark`: a delete of another writer's
        at `mark` may have superseded it, since a tie on the timestamp breaks on the
        origin (a scan: for rare checks)."""
        return any(entry.stamp <= mark for entry in self._entries.values())

    def raise_horizon(self, writer: str, mark: Timestamp) -> None:
        if mark > self.horizon.get(writer, ZERO):
            self.horizon[writer] = mark
            if mark > self._collected:
                self._collected = mark

    def clear(self) -> None:
        """Forget every entry, watermark, retired writer and the horizon (a reset)."""
        self._clear()

    def newer_than(self, origin: str, since: Timestamp) -> Iterator[Entry]:
        """The entries we hold written by `origin` with ts > since, in ts order."""
        log, after = self._logs.get(origin, []), _plain(since)
        for i in range(bisect_right(log, after, key=_stamp), len(log)):
            entry = log[i]
            if self._entries.get(entry.key) is entry:  # not overwritten since
                yield entry

    def point_before(self, origin: str, ts: Timestamp) -> Timestamp:
        """The newest timestamp at or before `ts` in `origin`'s history as we know it
        (ZERO if none): a point a peer's watermark for it can stand at."""
        log = self._logs.get(origin, [])
        i = bisect_right(log, _plain(ts), key=_stamp)
        return log[i - 1].ts if i else ZERO

    def holds_any(self, origin: str) -> bool:
        """Whether some entry we hold now was written by `origin`."""
        return next(self.newer_than(origin, ZERO), None) is not None

    def watermark(self, origin: str) -> Timestamp:
        return self.watermarks.get(origin, ZERO)

    def coverage(self, origin: str) -> Timestamp:
        """Up to where we hold (or held, before collecting) everything `origin` wrote."""
        return self.watermarks.get(origin) or self.retired.get(origin, ZERO)

    def advance(self, origin: str, base: Timestamp, upto: Timestamp) -> None:
        """We now hold everything `origin` wrote in (base, upto]: if we already held all
        up to base, the watermark moves up to upto; otherwise a gap remains. (A retired
        writer held beyond its end is taken back into the digest first.)"""
        ended = self.retired.get(origin)
        if ended is not None:
            if upto <= ended or base > ended:
                return
            self.unretire(origin)
        current = self.watermark(origin)
        if current >= base and upto > current:
            self.watermarks[origin] = upto

    def retire(self, origin: str, upto: Timestamp) -> None:
        """`origin`'s life has ended and we hold it up to `upto`: list it in the retired
        set instead of the digest (R20). Its entries stay and are sent to any peer that
        holds less of it."""
        self.watermarks.pop(origin, None)
        self.retired.set(origin, upto)

    def unretire(self, origin: str) -> None:
        """Take a retired writer back into the digest (someone holds more of it)."""
        end = self.retired.discard(origin)
        if end is not None:
            self.watermarks[origin] = end

    def forget_writer(self, origin: str) -> None:
        """Drop a retired writer none of whose entries we hold any more. Its end counts
        as collected from then on: we hold nothing of it up there, by design (R20)."""
        end = self.retired.discard(origin)
        if end is not None and end > self._collected:
            self._collected = end
        horizon = self.horizon.pop(origin, None)
        if horizon is not None:
            self.remember_forgotten_writer(origin, horizon)
        self._logs.pop(origin, None)
        self._stale.pop(origin, None)

    def remember_forgotten_writer(self, writer: str, horizon: Timestamp) -> None:
        remember_newest(self.forgotten_writers, writer, horizon)

    def live(self, now_ms: int) -> dict[str, Entry]:
        return {k: e for k, e in self._entries.items() if e.is_live(now_ms)}

    def state_hash(self, now_ms: int) -> tuple[str, int]:
        return state_hash(self.live(now_ms))


def state_hash(live: dict[str, Entry]) -> tuple[str, int]:
    """A hash of a live state and its key count: equal iff the live states are."""
    digest = hashlib.sha256()
    for key in sorted(live):
        e = live[key]
        record = [key, e.value, e.wall, e.counter, e.origin, e.expires_at]
        digest.update(canonical(record))
        digest.update(b"\n")
    return digest.hexdigest(), len(live)
