"""Counters that merge (R22): each writer, one life of a node, counts in a slot of its own,
an entry under a reserved key only it writes; a counter's total is the sum of its slots.

A slot only grows, so the newest entry of a slot is also its largest, and last-writer-wins
merging of the slot entries is exactly the grow-only (and positive-negative) counter of the
CRDT literature: any order, duplication or loss-and-resend of merges gives every node the
same total once it holds every slot. A node restarted empty is a new writer with a new slot;
the slots of its earlier lives stay and keep counting.

Windowed counters, for rate limits, count in slots per fixed window of wall time. A window's
slots all expire together at the end of the following window (so the previous window is
still readable for a sliding estimate), and since every version of such a slot expires at
that same moment, nothing expired can come back: they are collected without the tombstone
grace (see Store), which keeps the state bounded by the windows in use.

A busy windowed counter may be counted *deferred* (`add_in_window(..., defer=True)`): the
count is taken into this node's totals at once, and written into its slot entry at the next
`flush()`, so that a burst of hits between two pushes costs one write, not one per hit.
The node flushes before every push and round; nothing else changes, as the slot's newest
entry still holds the writer's whole count.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from gossip.errors import InvalidKey, InvalidValue
from gossip.namespaces import COUNTER, RESERVED, WINDOW
from gossip.store import Entry, Store

if TYPE_CHECKING:
    from gossip.protocol import GossipProtocol

def counter_slot(name: str, writer: str) -> str:
    return f"{COUNTER}{name}/{writer}"


def window_slot(name: str, length_ms: int, window: int, writer: str) -> str:
    return f"{WINDOW}{length_ms}/{window}/{name}/{writer}"


def window_of(now_ms: int, length_ms: int) -> int:
    """The index of the window of `length_ms` holding wall time `now_ms` (aligned to the epoch,
    so that every node agrees which window it is)."""
    return now_ms // length_ms


def window_expiry(length_ms: int, window: int) -> int:
    """When a window's slots expire: the end of the window after it."""
    return (window + 2) * length_ms


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


WindowId = tuple[str, int, int]  # (name, length ms, window index)
# WindowCount(...) through its class runs the named tuple's Python-level __new__; the hot
# paths build it as a plain tuple of that class, a third of the cost, the same object.
_new = tuple.__new__


class WindowCount(NamedTuple):
    """A windowed counter as one node sees it: the totals of the current and the previous
    window, the window's length and how far into it we are (ms). (A named tuple: built on
    every rate-limited request, where a frozen dataclass cost four times as much.)"""

    current: int
    previous: int
    length_ms: int
    elapsed_ms: int

    @property
    def sliding(self) -> float:
        """The sliding-window estimate: the previous window weighted by the part of it
        still inside the last `length_ms`, plus the current one."""
        return self.previous * (1 - self.elapsed_ms / self.length_ms) + self.current

    @property
    def resets_in_ms(self) -> int:
        """Until the current window ends."""
        return self.length_ms - self.elapsed_ms


@dataclass
class Tally:
    """Every counter's and window's total, kept up to date from the entries a store takes
    (a listener of the store), so that reading a total costs a dict lookup. A slot whose
    entry is not its writer's own (the key does not end in the entry's writer), or whose
    value is not a count, counts for nothing."""

    slots: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # key -> (name, added, removed)
    totals: dict[str, int] = field(default_factory=dict)
    windows: dict[WindowId, dict[str, int]] = field(default_factory=dict)  # -> slot key -> count
    window_totals: dict[WindowId, int] = field(default_factory=dict)
    _expiries: list[tuple[int, WindowId]] = field(default_factory=list)
    _cleared: int = -1

    def follow(self, store: Store) -> None:
        """Count what `store` holds now, and every entry it takes from now on."""
        self.rebuild(store)
        store.listeners.append(self.take)

    def rebuild(self, store: Store) -> None:
        self.slots, self.totals, self.windows, self.window_totals, self._expiries = {}, {}, {}, {}, []
        for entry in list(store.entries()):
            self.take(entry)
        self._cleared = store.cleared

    def stale(self, store: Store) -> bool:
        return store.cleared != self._cleared

    def sync(self, store: Store) -> None:
        """Count afresh after the store was cleared (a reset drops every entry at once)."""
        if self.stale(store):
            self.rebuild(store)

    def take(self, entry: Entry) -> None:
        key = entry.key
        if not key.startswith(RESERVED):
            return
        if key.startswith(COUNTER):
            self._take_counter(entry)
        elif key.startswith(WINDOW):
            self._take_window(entry)

    @staticmethod
    def _own_part(entry: Entry, prefix: str) -> str | None:
        """The part of the key between the prefix and the writer, if the writer owns it."""
        suffix = "/" + entry.origin
        if entry.deleted or not entry.key.endswith(suffix) or len(entry.key) <= len(prefix) + len(suffix):
            return None
        return entry.key[len(prefix) : -len(suffix)]

    def _take_counter(self, entry: Entry) -> None:
        before = self.slots.pop(entry.key, None)
        if before is not None:
            self.totals[before[0]] -= before[1] - before[2]
        name, value = self._own_part(entry, COUNTER), entry.value
        if name is None:
            return
        total = self.totals.get(name, 0)
        if isinstance(value, list) and len(value) == 2:
            added, removed = _count(value[0]), _count(value[1])
            if added is not None and removed is not None:
                self.slots[entry.key] = (name, added, removed)
                total += added - removed
        self.totals[name] = total

    def _take_window(self, entry: Entry) -> None:
        key = entry.key
        rest = self._own_part(entry, WINDOW)
        parts = [] if rest is None else rest.split("/", 2)
        count = _count(entry.value) if not entry.deleted else None
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or count is None:
            return  # (an intruder's entry over a window slot is not worth undoing: it expires)
        wid: WindowId = (parts[2], int(parts[0]), int(parts[1]))
        slots = self.windows.get(wid)
        if slots is None:
            slots = self.windows[wid] = {}
            heapq.heappush(self._expiries, (window_expiry(wid[1], wid[2]), wid))
        before = slots.get(key, 0)
        slots[key] = count
        self.window_totals[wid] = self.window_totals.get(wid, 0) + count - before

    def total(self, name: str) -> int:
        return self.totals.get(name, 0)

    def own(self, name: str, writer: str) -> tuple[int, int]:
        """The (added, removed) counts in `writer`'s slot of counter `name`."""
        slot = self.slots.get(counter_slot(name, writer))
        return (0, 0) if slot is None else (slot[1], slot[2])

    def window_total(self, name: str, length_ms: int, window: int) -> int:
        return self.window_totals.get((name, length_ms, window), 0)

    def count_own(self, wid: WindowId, key: str, amount: int) -> int:
        """Count `amount` in our own slot `key` of window `wid` before its entry is written
        (deferred counting): when the entry comes, it holds the same count, so it changes
        nothing. The slot's new count."""
        slots = self.windows.get(wid)
        if slots is None:
            slots = self.windows[wid] = {}
            heapq.heappush(self._expiries, (window_expiry(wid[1], wid[2]), wid))
        count = slots[key] = slots.get(key, 0) + amount
        self.window_totals[wid] = self.window_totals.get(wid, 0) + amount
        return count

    def own_window(self, name: str, length_ms: int, window: int, writer: str) -> int:
        slots = self.windows.get((name, length_ms, window), {})
        return slots.get(window_slot(name, length_ms, window, writer), 0)

    def prune(self, now_ms: int) -> None:
        """Forget windows that have expired (their entries expire then too)."""
        while self._expiries and self._expiries[0][0] <= now_ms:
            _, wid = heapq.heappop(self._expiries)
            self.windows.pop(wid, None)
            self.window_totals.pop(wid, None)


class Counting:
    """The counter operations of one node, on its protocol (pure: callers pass the time;
    SharedState and the simulator both drive it). Never waits on anything: an increment is
    a local write of this node's slot, which gossip spreads like any other."""

    def __init__(self, protocol: GossipProtocol) -> None:
        self.protocol = protocol
        self.tally = Tally()
        self.tally.follow(protocol.store)
        self._unwritten: dict[str, WindowId] = {}  # own slot key -> its window, counted but not written
        # Our slot's key in each window counted in lately, for the writer `_keys_of` (a key
        # is spelled out once per window, not on every count).
        self._own_keys: dict[WindowId, str] = {}
        self._keys_of = ""

    def counts(self) -> Tally:
        tally = self.tally
        if tally._cleared != self.protocol.store.cleared:  # (Tally.sync, inlined: every request reads it)
            tally.rebuild(self.protocol.store)
        return tally

    def add(self, name: str, added: int, removed: int, now_ms: int) -> int:
        """Count `added` up and `removed` down in our slot of counter `name`; the new total."""
        check_amount(added)
        check_amount(removed)
        self.check_name(name)
        if self.protocol.read(name, now_ms) is not None:
            raise InvalidKey(f"{name!r} holds a value written with set(), not a counter")
        writer = self.protocol.writer
        mine = self.counts().own(name, writer)
        self.protocol.write(counter_slot(name, writer), [mine[0] + added, mine[1] + removed], now_ms)
        return self.tally.total(name)

    def add_in_window(
        self, name: str, length_ms: int, amount: int, now_ms: int, defer: bool = False
    ) -> WindowCount:
        """Count `amount` in the current window of counter `name`; the windows' totals.
        `defer`: write our slot's entry at the next flush() rather than now."""
        # (the hot path of every rate-limited request: the checks and helpers are inlined)
        if type(amount) is not int or amount < 0 or type(now_ms) is not int:
            check_amount(amount)
            check_now(now_ms)
        window, writer, tally = now_ms // length_ms, self.protocol.writer, self.counts()
        if tally._expiries and tally._expiries[0][0] <= now_ms:
            tally.prune(now_ms)
        wid: WindowId = (name, length_ms, window)
        slots = tally.windows.get(wid)
        if slots is None:  # (a name already counted was checked then)
            self.check_name(name)
        if writer is not self._keys_of or len(self._own_keys) >= 4096:
            self._own_keys, self._keys_of = {}, writer
        key = self._own_keys.get(wid)
        if key is None:
            key = self._own_keys[wid] = window_slot(name, length_ms, window, writer)
        totals = tally.window_totals
        if defer and slots is not None:  # (Tally.count_own, inlined: a window already counted in)
            slots[key] = slots.get(key, 0) + amount
            current = totals[wid] = totals[wid] + amount
            self._unwritten[key] = wid
        else:
            if defer:
                tally.count_own(wid, key, amount)
                self._unwritten[key] = wid
            else:
                mine = tally.own_window(name, length_ms, window, writer) + amount
                self._unwritten.pop(key, None)
                self._write_slot(key, wid, mine, now_ms)
            totals = tally.window_totals  # (as the write left it)
            current = totals.get(wid, 0)
        return _new(WindowCount, (current, totals.get((name, length_ms, window - 1), 0),
                                  length_ms, now_ms - window * length_ms))

    @property
    def unwritten(self) -> int:
        """How many of our slots hold deferred counts not yet written (flush() writes them)."""
        return len(self._unwritten)

    def flush(self, now_ms: int) -> int:
        """Write the deferred counts into our slots' entries; how many slots were written.
        Slots of a window already over, or of an earlier life of this node (a reset drops
        the counts with the rest of the state), are let go."""
        if not self._unwritten:
            return 0
        unwritten, self._unwritten = self._unwritten, {}
        tally, writer, written = self.counts(), self.protocol.writer, 0
        for key, wid in unwritten.items():
            name, length_ms, window = wid
            count = tally.own_window(name, length_ms, window, writer)
            if count and key.endswith("/" + writer) and window_expiry(length_ms, window) > now_ms:
                self._write_slot(key, wid, count, now_ms)
                written += 1
        return written

    def _write_slot(self, key: str, wid: WindowId, count: int, now_ms: int) -> None:
        ttl = (window_expiry(wid[1], wid[2]) - now_ms) / 1000
        self.protocol.write(key, count, now_ms, ttl)

    def names(self, now_ms: int) -> set[str]:
        """The windowed counters with a count in a window not yet expired."""
        tally = self.counts()
        tally.prune(now_ms)
        return {wid[0] for wid, total in tally.window_totals.items() if total}

    def window(self, name: str, length_ms: int, now_ms: int) -> WindowCount:
        if type(now_ms) is not int:
            check_now(now_ms)
        tally, window = self.counts(), now_ms // length_ms  # window_of()
        if tally._expiries and tally._expiries[0][0] <= now_ms:
            tally.prune(now_ms)
        totals = tally.window_totals
        return _new(WindowCount, (totals.get((name, length_ms, window), 0),
                                  totals.get((name, length_ms, window - 1), 0),
                                  length_ms, now_ms - window * length_ms))

    def total(self, name: str) -> int:
        return self.counts().total(name)

    def is_counter(self, key: str) -> bool:
        return key in self.counts().totals

    def check_name(self, name: str) -> None:
        """A counter's name: a non-empty string outside the reserved keys, with room left
        in the key length for the slot's prefix, window and writer."""
        if not isinstance(name, str) or not name:
            raise InvalidKey("a counter's key must be a non-empty string")
        if name.startswith(RESERVED):
            raise InvalidKey(f"keys starting with {RESERVED!r} are reserved for the project's own data")
        room = self.protocol.config.max_key_bytes - len(window_slot("", 10**12, 10**12, self.protocol.writer))
        if len(name.encode("utf-8", "surrogatepass")) > room:
            raise InvalidKey(f"a counter's key may be at most {room} bytes on this node")


def check_amount(amount: int) -> None:
    if type(amount) is not int or amount < 0:
        raise InvalidValue(f"amount must be a whole number >= 0 (decr() counts down), got {amount!r}")


def check_now(now_ms: int) -> None:
    """Windows are whole milliseconds of wall time: a float (a clock patched to return one)
    would name windows nobody counts in, and every limit would admit everything."""
    if type(now_ms) is not int:
        raise InvalidValue(f"the time must be whole milliseconds (an int), got {now_ms!r}")


YEAR_S = 366 * 86_400.0


_lengths: dict[float, int] = {}  # period_ms() of the periods met lately (every rate-limited request asks)


def period_ms(period: float) -> int:
    """A window's length in ms, from seconds."""
    if type(period) is float or type(period) is int:  # (not a bool, whose 1 is the key of 1.0)
        length = _lengths.get(period)
        if length is not None:
            return length
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 0.001 <= period <= YEAR_S:
        raise InvalidValue(f"period must be a number of seconds from 0.001 to a year, got {period!r}")
    length = round(period * 1000)
    if type(period) is float or type(period) is int:
        if len(_lengths) >= 256:
            _lengths.clear()
        _lengths[period] = length
    return length
