"""This node's copy of the shared state: the core protocol behind the one lock, the reads
and writes made under it (keys, counters, rate limits), and the wake-up of the loops that
spread the writes (node.server.pump). Reads never touch the network.

Safe to use from the event loop and from threads (FastAPI runs plain `def` routes in a
thread pool): every touch of the protocol holds `lock`, never across an await. The other
parts of a node (node.server.pump, node.server.inbox, node.server.views) take the same
lock for theirs."""

from __future__ import annotations

import logging
import threading

from gossip.counters import Counting, WindowCount, period_ms
from gossip.errors import InvalidKey, InvalidValue, WritesRefused
from gossip.namespaces import RESERVED, is_reserved
from gossip.protocol import GossipProtocol
from gossip.ratelimit import Decision, Rate, admit
from gossip.store import JSON, Entry
from node.server.clockcheck import ClockCheck
from node.server.wakeups import Wakeups
from node.wire.transport import wall_ms

log = logging.getLogger("gossip.node")


class TooFewPeers(InvalidValue):
    """A write asked for more replicas than there are live peers (nothing was written)."""


def refuse_reserved(key: str) -> None:
    if isinstance(key, str) and is_reserved(key):
        raise InvalidKey(f"keys starting with {RESERVED!r} are reserved for the project's own data "
                         "(counters, the service registry, jobs)")


class LocalState:
    def __init__(self, protocol: GossipProtocol, clockcheck: ClockCheck) -> None:
        self.protocol = protocol
        self.clockcheck = clockcheck  # whether our clock is fit to acknowledge writes
        self.lock = threading.Lock()
        self.counting = Counting(protocol)  # counters' totals, kept up to date by the store
        self.wake = Wakeups()
        # While the node's loops run, windowed counts are deferred: the flusher writes them
        # into their slots (see Counting), woken once for them all.
        self.deferring = False
        self._flush_asked = False  # the flusher is woken for the counts unwritten (under the lock)

    @property
    def id(self) -> str:
        return self.protocol.id

    def write_refusal(self) -> str | None:
        return self.clockcheck.refusal()

    def check_writes(self) -> None:
        if self.write_refusal() is not None:
            raise WritesRefused(self.write_refusal())

    # -- keys -------------------------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        """The live entry for `key` (value, timestamp, writer), or None. No lock: one dict
        read is atomic, and entries never change; the clock is read only for an expiry."""
        entry = self.protocol.store.get(key)
        if entry is None or not entry.is_live(0 if entry.expires_at is None else wall_ms()):
            return None
        return entry

    def live(self) -> dict[str, Entry]:
        """Every live entry, the project's own included (a copy)."""
        with self.lock:
            return self.protocol.live(wall_ms())

    def set(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        refuse_reserved(key)
        self.check_writes()
        if self.counting.is_counter(key):
            raise InvalidKey(f"{key!r} is a counter: change it with incr() or decr(), not set()")
        return self.write_reserved(key, value, ttl)

    def write_reserved(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        with self.lock:
            entry = self.protocol.write(key, value, wall_ms(), ttl)
        self.wake.pusher()
        return entry

    def write_for_replicas(
        self, key: str, value: JSON, ttl: float | None, replicas: int
    ) -> tuple[Entry, list[str]]:
        """Write `key` if there are `replicas` live peers (else TooFewPeers, nothing
        written): the entry, and the live peers in a random order to send it to."""
        self.check_writes()
        with self.lock:
            peers = self.protocol.membership.live_addresses()
            if replicas > len(peers):
                raise TooFewPeers(f"replicas={replicas} cannot be met: {len(peers)} live peers")
            entry = self.protocol.write(key, value, wall_ms(), ttl)
            self.protocol.rng.shuffle(peers)
        self.wake.pusher()
        return entry, peers

    def delete(self, key: str) -> Entry:
        refuse_reserved(key)
        self.check_writes()
        return self.delete_reserved(key)

    def delete_reserved(self, key: str) -> Entry:
        with self.lock:
            entry = self.protocol.delete(key, wall_ms())
        self.wake.pusher()
        return entry

    # -- counters (gossip/counters.py) and rate limits (gossip/ratelimit.py) -----------------

    def count_by(self, key: str, added: int, removed: int) -> int:
        self.check_writes()
        with self.lock:
            total = self.counting.add(key, added, removed, wall_ms())
        self.wake.pusher()
        return total

    def count(self, key: str) -> int:
        with self.lock:
            return self.counting.total(key)

    def incr_window(self, key: str, period: float, amount: int = 1, quiet_from: int | None = None
                    ) -> WindowCount:
        """(SharedState.incr_window.) `quiet_from`: a window total past which counts change
        no decision (a fixed window's limit); those are written with the next counts, or
        within an interval, instead of waking the flusher."""
        length = period_ms(period)
        refusal = self.clockcheck.refusal()  # (check_writes(), inlined: every `limits` hit comes here)
        if refusal is not None:
            raise WritesRefused(refusal)
        defer = self.deferring
        with self.lock:
            counted = self.counting.add_in_window(key, length, amount, wall_ms(), defer)
            urgent = quiet_from is None or counted.current - amount < quiet_from
            flush = defer and urgent and self._ask_flush()
        if not defer:
            self.wake.pusher()
        elif flush:
            self.wake.flusher()
        return counted

    def window_count(self, key: str, period: float) -> WindowCount:
        length = period_ms(period)
        with self.lock:
            return self.counting.window(key, length, wall_ms())

    def admit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        defer = self.deferring
        with self.lock:
            decision = admit(self.counting, key, rate, cost, wall_ms(), defer)
            flush = decision.allowed and defer and self._ask_flush()
        if decision.allowed and not defer:
            self.wake.pusher()
        elif flush:
            self.wake.flusher()
        return decision

    def _ask_flush(self) -> bool:
        """Whether to wake the flusher for a count just deferred: once for all those it
        will write (under the lock)."""
        asked, self._flush_asked = self._flush_asked, True
        return not asked

    def window_names(self) -> list[str]:
        with self.lock:
            return sorted(self.counting.names(wall_ms()))

    def flush_counts(self) -> None:
        """Write the deferred windowed counts into their slots (the pusher sends them)."""
        with self.lock:
            self.counting.flush(wall_ms())
            self._flush_asked = False

    # -- what the core tells us -------------------------------------------------------------

    def log_reset(self, resets_before: int) -> None:
        """Log a reset the protocol just made (under the lock, `resets_before` the count of
        resets before the message that made it)."""
        notice = self.protocol.last_reset
        if self.protocol.stats.resets != resets_before and notice is not None:
            e = notice.evidence
            log.warning(
                "%s: reset: our state predates collections of %s (%s: %s at %s); dropped it and "
                "catching up from that peer as a new life; writes only this node held are lost",
                self.id, notice.peer, e.reason, e.writer, tuple(e.mark),
            )
