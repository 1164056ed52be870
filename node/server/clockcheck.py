"""Whether this node may acknowledge writes, judged by its clock against the cluster's.

A peer refuses a whole message carrying a timestamp more than `max_offset` ahead of its
own wall clock (docs/PROTOCOL.md, R3). A node whose writes would carry such timestamps
must not acknowledge them: nobody would take them. Their timestamps come from the hybrid
logical clock, which runs at the wall clock, or ahead of it when it was restored from a
data directory written under a clock that ran ahead (or raised by peers' timestamps).
So writes are refused while

    (how far our wall clock runs ahead of the cluster's) + (how far our HLC runs ahead
    of our wall clock) > max_offset.

How far our clock runs ahead of the cluster's is measured, not inferred from refusals:
every gossip request and answer carries its sender's wall time (the `x-gossip-time`
header). A message stamped T by the peer and received when our monotonic clock read r
bounds the peer's clock from below: at r it read at least T. An answer to our request,
sent when our monotonic clock read s, also bounds it from above: at s it read at most T.
Each peer's bounds are kept against our *monotonic* clock, so that a step of our own wall
clock (the usual fault) shows at once, without waiting for new messages. A peer's recent
bounds are intersected (the tightest come from the quickest exchanges, as NTP filters by
delay); bounds that contradict each other mean a clock moved, and only the newest stays.

Nodes on our own host share our clock, so they do not vouch for it: peers are grouped by
the host part of their advertised address, each host counts once (the median of its
nodes), and our own host counts once, at offset 0. The cluster's clock is the median of
these (the lower one of the two middle values when their count is even: between a clock
that runs ahead and one that runs behind, the one ahead is the one whose writes would be
refused, so a tie goes against it: with two hosts, the one ahead refuses writes). Judging
by the slowest host instead would let one host whose clock runs behind stop every other
node's writes; that host is told instead (clock_behind). Each peer is taken at the least
its clock can read (its lower bound), so our lead is never underestimated, and
overestimated by at most the one-way delay of that peer's quickest recent message.

A node that knows no other host (one machine, `uvicorn --workers`) has nothing to judge
by and takes writes. A node that knows of other hosts (its seeds, its members) but has
compared its clock with none of them yet takes no writes: it has not yet seen whether its
clock is fit for the cluster (its first round comes at once, and an HTTP write waits a
little for the first answer before it is refused). Estimates are kept until their peer is
gone from the membership (left or forgotten), so a node cut off from the other hosts still
judges by what it measured before, against its monotonic clock.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import median_low
from urllib.parse import urlsplit

import anyio

SAMPLES_KEPT = 16  # per peer, the latest bounds intersected
SAMPLE_SPAN = 30.0  # seconds: bounds older than this (before the newest) are let go
MAX_PEERS = 1024  # peers whose clocks are tracked (the longest unheard goes first)
REBUILD_EVERY = 0.1  # seconds: how stale the per-host summary a write is judged by may be
WAIT_POLL = 0.01  # seconds between looks while a write waits for the first comparison

# Codes of the judgement (the first three take writes).
OK, ALONE, BEHIND = "ok", "alone", "clock_behind"
UNCHECKED, AHEAD, HLC_AHEAD = "clock_unchecked", "clock_ahead", "hlc_ahead"
REFUSING = (UNCHECKED, AHEAD, HLC_AHEAD)


def host_of(address: str) -> str:
    """The host part of a base URL (`http://10.0.0.3:7946` -> `10.0.0.3`), lower case."""
    try:
        host = urlsplit(address).hostname
    except ValueError:
        host = None
    return (host or address).lower()


@dataclass(frozen=True, slots=True)
class Bound:
    """One message's evidence: the peer's wall time minus our monotonic time, in ms, at
    least `low` and (from a round trip) at most `high`."""

    at: float  # our monotonic seconds when it came
    low: float
    high: float | None


class PeerClock:
    """One peer's clock against our monotonic clock: the intersection of its recent bounds."""

    __slots__ = ("bounds", "heard", "high", "host", "low")

    def __init__(self, host: str) -> None:
        self.host = host
        self.bounds: deque[Bound] = deque()
        self.low = -float("inf")
        self.high: float | None = None
        self.heard = 0.0

    def add(self, bound: Bound) -> None:
        bounds = self.bounds
        bounds.append(bound)
        while len(bounds) > SAMPLES_KEPT or bound.at - bounds[0].at > SAMPLE_SPAN:
            bounds.popleft()
        low = max(b.low for b in bounds)
        highs = [b.high for b in bounds if b.high is not None]
        high = min(highs) if highs else None
        if high is not None and low > high:  # a clock moved (theirs or ours): start again from now
            bounds.clear()
            bounds.append(bound)
            low, high = bound.low, bound.high
        self.low, self.high, self.heard = low, high, bound.at


@dataclass(frozen=True, slots=True)
class PeerOffset:
    """How far a peer's clock runs ahead of ours now, in seconds (negative: behind)."""

    address: str
    host: str
    offset: float  # the best estimate: the middle of the bounds (their lower bound without a round trip)
    uncertainty: float | None  # half the bounds' width (None: bounded from below only)
    least: float  # the lower bound: what the judgement goes by

    def json(self) -> dict[str, object]:
        uncertainty = None if self.uncertainty is None else round(self.uncertainty, 3) + 0.0
        return {"peer": self.address, "host": self.host, "clock_offset_seconds": round(self.offset, 3) + 0.0,
                "uncertainty_seconds": uncertainty}  # (+ 0.0: never -0.0)


@dataclass(frozen=True, slots=True)
class Judgement:
    code: str  # OK, ALONE, BEHIND (writes taken); UNCHECKED, AHEAD, HLC_AHEAD (writes refused)
    detail: str  # what is wrong and what to change ("" when fine)
    ahead: float | None  # seconds our wall clock runs ahead of the cluster's, at most (None: no other host)
    hlc_lead: float  # seconds our hybrid logical clock runs ahead of our wall clock (0 when it does not)
    hosts: int  # other hosts compared with
    peers: tuple[PeerOffset, ...] = ()  # the other hosts' nodes

    @property
    def refuses(self) -> bool:
        return self.code in REFUSING


def judge(
    peers: Iterable[PeerOffset], own_host: str, expecting: bool, hlc_lead: float, max_offset: float,
    restored: bool = False,
) -> Judgement:
    """The judgement from each peer's offset (the pure rule; `ClockCheck` measures).
    `expecting`: we know of some node on another host; `hlc_lead`: seconds our HLC runs
    ahead of our wall clock; `restored`: it stands where the data directory put it."""
    others = sorted((p for p in peers if p.host != own_host), key=lambda p: p.address)
    by_host: dict[str, list[PeerOffset]] = {}
    for p in others:
        by_host.setdefault(p.host, []).append(p)
    lead = max(0.0, hlc_lead)
    if not by_host:
        if expecting:
            return Judgement(UNCHECKED, "this node has not compared its clock with any node on another host "
                             "yet (none has answered): it takes writes once one has, so that it never "
                             "acknowledges a write the others would refuse", None, lead, 0)
        return Judgement(ALONE, "", None, lead, 0)
    # The cluster's clock against ours: per host the median of its nodes, then the (lower)
    # median over the hosts, ours included at 0. `ahead` goes by the lower bounds, `about`
    # by the best estimates, for the text.
    least = median_low([0.0, *(median_low([p.least for p in ps]) for ps in by_host.values())])
    about = median_low([0.0, *(median_low([p.offset for p in ps]) for ps in by_host.values())])
    ahead, hosts = -least, len(by_host)
    where = (f"the median of {hosts + 1} hosts' clocks, ours included"
             if hosts > 1 else "the one other host's")
    if ahead > max_offset:
        return Judgement(AHEAD, f"our clock runs {ahead:.2f} s ahead of the cluster's ({where}; about "
                         f"{-about:.2f} s by the best estimate), beyond max_offset ({max_offset:g} s): peers "
                         "refuse timestamps that far ahead, so this node takes no writes; fix this host's "
                         "clock (NTP)", ahead, lead, hosts, tuple(others))
    if ahead + lead > max_offset:
        wait = ahead + lead - max_offset
        origin = "restored from the data directory" if restored else "raised by timestamps taken from peers"
        wall = (f", and our wall clock {ahead:.2f} s ahead of the cluster's" if ahead >= 0.005 else
                f", while our wall clock runs {-ahead:.2f} s behind the cluster's" if ahead <= -0.005 else "")
        return Judgement(HLC_AHEAD, f"our hybrid logical clock ({origin}) runs {lead:.2f} s ahead of this "
                         f"host's wall clock{wall}: new writes would carry timestamps {ahead + lead:.2f} s "
                         f"ahead of the cluster's clock, beyond max_offset ({max_offset:g} s); writes wait "
                         f"about {wait:.1f} s more, until the wall clock has caught up (nothing to fix, "
                         "unless this keeps coming back)", ahead, lead, hosts, tuple(others))
    if -ahead > max_offset:
        return Judgement(BEHIND, f"our clock runs {-ahead:.2f} s behind the cluster's ({where}), beyond "
                         f"max_offset ({max_offset:g} s): we refuse our peers' fresh gossip (their "
                         "timestamps run too far ahead of our clock) and our writes carry old timestamps; "
                         "fix this host's clock (NTP)", ahead, lead, hosts, tuple(others))
    return Judgement(OK, "", ahead, lead, hosts, tuple(others))


class ClockCheck:
    """Measures each peer's clock from the times stamped on gossip, and judges whether
    this node may acknowledge a write now. Fed from the event loop, asked from any thread."""

    def __init__(
        self,
        own_address: str,
        max_offset: float,
        hlc_wall: Callable[[], int],
        *,
        accept_anyway: bool = False,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`hlc_wall`: the wall part (ms) of our hybrid logical clock's last timestamp;
        `accept_anyway`: judge and report, but never refuse a write."""
        self.own_host = host_of(own_address)
        self.max_offset = max_offset
        self.accept_anyway = accept_anyway
        self._hlc_wall, self._wall_ms, self._monotonic = hlc_wall, wall_ms, monotonic
        self.restored_wall: int | None = None  # the HLC's wall time as the data directory gave it
        self.expecting = False  # some known node (seed or member) is on another host
        self._peers: dict[str, PeerClock] = {}
        self._lock = threading.Lock()
        # For writes, the judgement's numbers without its words: per other host, the
        # median of its nodes' lower bounds (ms, against our monotonic clock), rebuilt at
        # most every REBUILD_EVERY seconds after a change (at once while there is none).
        self._host_lows: list[float] = []
        self._changed = False
        self._built = -float("inf")

    # -- what we know ----------------------------------------------------------------------

    def expect(self, addresses: Iterable[str]) -> None:
        """The nodes we know of (seeds, and members that have not left): whether one is on
        another host; and forget the clocks of peers no longer among them (once unheard
        for SAMPLE_SPAN: a newcomer may be heard before the membership lists it)."""
        known = set(addresses)
        self.expecting = any(host_of(a) != self.own_host for a in known)
        cutoff = self._monotonic() - SAMPLE_SPAN
        with self._lock:
            for address in [a for a, p in self._peers.items() if a not in known and p.heard < cutoff]:
                del self._peers[address]
                self._changed = True

    def observe(self, address: str, their_ms: int | None, received: float, sent: float | None = None) -> None:
        """A message from `address` stamped `their_ms` (its wall time), received when our
        monotonic clock read `received`; `sent`: when we sent the request it answers."""
        if their_ms is None:
            return
        low = their_ms - received * 1000
        high = None if sent is None else their_ms - sent * 1000
        with self._lock:
            peer = self._peers.pop(address, None)  # (re-inserted: the dict stays in order of hearing)
            if peer is None:
                peer = PeerClock(host_of(address))
                if len(self._peers) >= MAX_PEERS:
                    del self._peers[next(iter(self._peers))]
            peer.add(Bound(received, low, high))
            self._peers[address] = peer
            self._changed = True

    def offsets(self) -> list[PeerOffset]:
        """Each peer's clock against our wall clock now."""
        base = self._wall_ms() - self._monotonic() * 1000  # our wall time minus our monotonic time
        with self._lock:
            peers = [(a, p.host, p.low, p.high) for a, p in self._peers.items()]
        out = []
        for address, host, low, high in peers:
            middle = low if high is None else (low + high) / 2
            uncertainty = None if high is None else (high - low) / 2000
            out.append(PeerOffset(address, host, (middle - base) / 1000, uncertainty, (low - base) / 1000))
        return out

    def _summary(self) -> list[float]:
        """Per other host, the median of its nodes' lower bounds, in order (see _host_lows)."""
        now = self._monotonic()
        with self._lock:
            if self._changed and (now - self._built >= REBUILD_EVERY or not self._host_lows):
                by_host: dict[str, list[float]] = {}
                for peer in self._peers.values():
                    if peer.host != self.own_host:
                        by_host.setdefault(peer.host, []).append(peer.low)
                self._host_lows = sorted(median_low(lows) for lows in by_host.values())
                self._changed, self._built = False, now
            return self._host_lows

    @property
    def compared(self) -> bool:
        """We have measured the clock of some node on another host."""
        return bool(self._summary())

    # -- the judgement -----------------------------------------------------------------------

    def judge(self) -> Judgement:
        hlc = self._hlc_wall()
        lead = max(0, hlc - self._wall_ms()) / 1000
        restored = self.restored_wall is not None and hlc <= self.restored_wall
        return judge(self.offsets(), self.own_host, self.expecting, lead, self.max_offset, restored)

    def refusal(self) -> str | None:
        """Why this node takes no write now (the answer to a write, with a 503), or None.
        On every write: the numbers first, cheaply; the words only for a refusal."""
        if self.accept_anyway:
            return None
        # (unchanged since it was built, the summary is read without the lock: it is replaced
        # whole, never changed in place; a lone node's every write comes this way)
        host_lows = self._summary() if self._changed else self._host_lows
        if host_lows:
            wall = self._wall_ms()
            base = wall - self._monotonic() * 1000  # our own host's value, in the same terms
            # The lower median of the hosts' values with ours among them, as judge() takes it:
            # element len // 2 of the sorted list with `base` put in its place.
            at, middle = bisect_left(host_lows, base), len(host_lows) // 2
            least = base if middle == at else host_lows[middle if middle < at else middle - 1]
            ahead = (base - least) / 1000
            if ahead + max(0, self._hlc_wall() - wall) / 1000 <= self.max_offset:
                return None
        elif not self.expecting:
            return None
        judgement = self.judge()
        if not judgement.refuses:
            return None
        return (f"this node takes no writes now: {judgement.detail} (or start it with "
                "--accept-writes-when-refused on)")

    async def settled(self, timeout: float) -> None:
        """Wait, up to `timeout` seconds, while this node expects to compare its clock with
        another host's and has not yet (a node just started: its first round is under way)."""
        if self.accept_anyway or not self.expecting or self.compared:
            return  # (every write but a new node's first ones: no timer, no cancel scope)
        with anyio.move_on_after(timeout):
            while not self.accept_anyway and self.expecting and not self.compared:
                await anyio.sleep(WAIT_POLL)
