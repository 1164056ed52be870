"""A storage backend for the `limits` package (and so for slowapi), counting in the shared
state, so that a limiter switches from per-worker to fleet-wide with one line:

    limiter = Limiter(key_func=get_remote_address, storage_uri=node.limits_storage.URI)
    app = FastAPI(lifespan=shared_state_lifespan())
    app.state.limiter = limiter

What it does, and where it differs from `memory://`:
- Windows are aligned to wall time on every node: a fixed window starts at a multiple of its
  length, not at its first hit (the sliding-window counter is aligned in `memory://` too).
  The moving window is not supported: it needs every hit's time.
- Counts are the fleet's, as this node sees them: other nodes' hits arrive after the
  propagation delay, so the fleet can admit a little more than a limit.
- Costs may be fractional (slowapi's callable cost): counts are kept in thousandths of a
  request, a cost rounded up to the next thousandth (exact integers, so every node sums
  the same). A whole count reads as an int, a fractional one as a float. A cost above the
  limit is refused.
- The sliding-window estimate is rounded down to whole requests before it is compared, as
  `limits` does, so `remaining` read from the window stats is what a hit gets.
- `reset()` and `clear(key)` are fleet-wide: each writes a reset marker, merged like any
  entry, and from then on the limit counts afresh (gossip/ratelimit.py, `epoch_name`):
  hits counted before the marker never count again, wherever they arrive; hits that a node
  counted after it but before hearing of it are forgotten with them.
- It fails loudly, never open: a storage counts on the node of the app whose limiter it is
  (the app's `shared_state_lifespan()` binds `app.state.limiter`'s storage while it runs),
  or on a node given to it (`storage_options={"state": state}`, or `counting_on(state)`
  for tests whose apps run no lifespan). Without one, with that node stopped, or with a
  clock patched to return float nanoseconds, every call raises `GossipStorageError`, saying
  what to do: it never counts on some other node of the process, nor admits by default.

`make test-limits-peers` runs `limits`' own storage and strategy tests and slowapi's tests
against it; the tests that do not pass by design are listed, each with its reason, in
scripts/limits_peers/differences.toml.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from limits.limits import GRANULARITIES
from limits.storage import SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

from gossip.errors import GossipError, InvalidValue
from gossip.ratelimit import CLEAR, RESET, Rate, clear_ttl, epoch_name
from node.state import SharedState
from node.wire.transport import wall_ms

URI = "gossip://"
UNIT = 1000  # counted units per request: costs count in thousandths of a request


class GossipStorageError(RuntimeError):
    """The storage has no running node to count on, or cannot read the time."""


_fallback: list[SharedState] = []  # counting_on(): the node of storages that have none


@contextmanager
def counting_on(state: SharedState) -> Iterator[SharedState]:
    """While open, `gossip://` storages bound to no node count on `state`: for test suites
    whose apps run no lifespan (`TestClient(app)` without `with`) and for plain `limits`
    code. The node must be running."""
    _fallback.append(state)
    try:
        yield state
    finally:
        _fallback.remove(state)


class GossipStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """(TimestampedSlidingWindow tells `limits` that sliding windows are aligned to the epoch,
    as in its memory storage; its key helper is not used: the windows are the core's.)"""

    STORAGE_SCHEME = ["gossip"]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, state: SharedState | None = None,
        **options: Any,
    ) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self._state = state
        self._rates: dict[tuple[int, int], Rate] = {}
        self._lengths: dict[str, float] = {}  # window lengths of keys not in the `limits` form
        self._parsed: dict[str, LimitsKey] = {}  # what keys in the `limits` form say, lately hit

    # -- which node ---------------------------------------------------------------------

    def bind(self, state: SharedState) -> None:
        """Count on `state` from now on (the app's lifespan does it for `app.state.limiter`)."""
        if self._state is not None and self._state is not state and self._state.running:
            raise GossipStorageError(
                f"this gossip:// storage already counts on node {self._state.id}, which still runs: "
                "one limiter cannot serve two running apps (give each app a limiter of its own)"
            )
        self._state = state

    def unbind(self, state: SharedState) -> None:
        if self._state is state:
            self._state = None

    @property
    def state(self) -> SharedState:
        """The running node this storage counts on; GossipStorageError, saying what to do,
        if there is none or the clock cannot be read as whole nanoseconds."""
        state = self._state if self._state is not None else (_fallback[-1] if _fallback else None)
        if state is None:
            raise GossipStorageError(
                "this gossip:// storage is bound to no node: its app's lifespan binds it while the "
                "app runs (lifespan=node.shared_state_lifespan(), the limiter at app.state.limiter; "
                "in tests, enter the client: `with TestClient(app) as client:`), or give it a "
                "running node: storage_options={'state': state}"
            )
        if not state.running:
            raise GossipStorageError(
                f"node {state.id}, which this gossip:// storage counts on, is not running: start it "
                "(the app's lifespan, or `await state.run()`) before the limiter counts"
            )
        if type(time.time_ns()) is not int:
            raise GossipStorageError(
                f"time.time_ns() returned {time.time_ns()!r}, not whole nanoseconds: a time-freezing "
                "library patched it. Windows are whole milliseconds; make the patch return an int"
            )
        return state

    # -- fixed window ---------------------------------------------------------------------

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (GossipStorageError, GossipError)

    # (counts are floats after a fractional cost, as in `limits`' memory storage: its hints say int)
    def incr(self, key: str, expiry: float, amount: float = 1) -> float:  # type: ignore[override]
        state = self.state
        units = amount * UNIT if type(amount) is int and amount >= 0 else _units(amount)
        # A fixed window's hits past its limit (`limits` counts refused hits too) change no
        # decision: they need not spread at once.
        window = self._parse(key) or LimitsKey(self._length(key, expiry), None)
        count = state.incr_window(_epoch(state, key), window.length, units, window.limit).current
        return count // UNIT if count % UNIT == 0 else count / UNIT  # (_requests(), inlined: the hot path)

    def get(self, key: str) -> float:  # type: ignore[override]
        state = self.state
        return _requests(state.window_count(_epoch(state, key), self._length(key)).current)

    def get_expiry(self, key: str) -> float:
        """When the current window ends (windows are aligned to wall time: it is the same
        for every key of the same length, counted or not)."""
        _ = self.state  # (fails as the other calls do, without a node)
        length_ms = round(self._length(key) * 1000)
        end_ms = (wall_ms() // length_ms + 1) * length_ms
        return end_ms // 1000 if end_ms % 1000 == 0 else end_ms / 1000  # (whole seconds read as such)

    def check(self) -> bool:
        try:
            return self.state.running
        except GossipStorageError:
            return False

    def reset(self) -> int | None:
        """Reset every limit counted by `gossip://` storages, fleet-wide; how many limits
        this node had counts for."""
        state = self.state
        counted = sum(1 for name in state.window_names() if self._is_current(state, name))
        state.write_reserved(RESET, wall_ms())
        return counted

    def clear(self, key: str) -> None:
        """Reset the limit `key`, fleet-wide."""
        state = self.state
        state.write_reserved(CLEAR + key, wall_ms(), ttl=clear_ttl(round(self._length(key) * 1000)))

    # -- sliding window counter -----------------------------------------------------------

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: float = 1) -> bool:
        state = self.state
        rate = self._rates.get((limit, expiry))
        if rate is None:
            rate = self._rates.setdefault((limit, expiry), Rate(limit * UNIT, expiry, whole=UNIT))
        return state.admit(_epoch(state, key), rate, _units(amount)).allowed

    def get_sliding_window(  # type: ignore[override]
        self, key: str, expiry: int
    ) -> tuple[float, float, float, float]:
        state = self.state
        seen = state.window_count(_epoch(state, key), expiry)
        left = seen.resets_in_ms / 1000
        previous, current = _requests(seen.previous), _requests(seen.current)
        return previous, (left if seen.previous else 0.0), current, left + expiry

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        if _limits_key(key) is None:
            self._lengths.setdefault(key, expiry)
        self.clear(key)

    # -- helpers --------------------------------------------------------------------------

    def _parse(self, key: str) -> LimitsKey | None:
        """What a key in the form `limits` builds says (remembered for the keys hit lately);
        None for any other key."""
        parsed = self._parsed.get(key)
        if parsed is None and (parsed := _limits_key(key)) is not None:
            if len(self._parsed) >= 10_000:
                self._parsed.clear()  # (a cache, of the keys hit lately)
            self._parsed[key] = parsed
        return parsed

    def _length(self, key: str, told: float | None = None) -> float:
        """A window's length (s): from the key `limits` builds ('.../<multiples>/<granularity>'),
        else as incr() was told."""
        parsed = self._parse(key)
        if parsed is not None:
            return parsed.length
        if told is not None:
            self._lengths[key] = told
            return told
        if key in self._lengths:
            return self._lengths[key]
        raise GossipStorageError(f"the window length of {key!r} is unknown: it was never counted here")

    def _is_current(self, state: SharedState, name: str) -> bool:
        """Whether counter `name` holds a `limits` key's hits since its newest reset."""
        base = name.partition("@")[0]
        return _limits_key(base) is not None and _epoch(state, base) == name


@contextmanager
def app_limiter_bound(app: Any, state: SharedState) -> Iterator[None]:
    """While open, the `gossip://` storage of the app's limiter (`app.state.limiter`, slowapi's
    place for it, or a `limits` strategy there) counts on `state`: the app's lifespan opens it."""
    limiter = getattr(app.state, "limiter", None)
    storages = [s for s in (getattr(limiter, "_storage", None), getattr(limiter, "storage", None))
                if isinstance(s, GossipStorage)]
    for storage in storages:
        storage.bind(state)
    try:
        yield
    finally:
        for storage in storages:
            storage.unbind(state)


def _epoch(state: SharedState, key: str) -> str:
    """The counter of limit `key` since its newest reset (gossip/ratelimit.py, epoch_name).
    Markers are rare: while the store holds neither (not even expired), that is `key`
    itself, seen in two dict reads without building the entries' liveness."""
    held = state.protocol.store.get
    if held(RESET) is None and held(CLEAR + key) is None:
        return key
    return epoch_name(key, state.entry)


class LimitsKey(NamedTuple):
    """What a key in the form `limits` builds ('.../<amount>/<multiples>/<granularity>') says."""

    length: float  # the window, in seconds
    limit: int | None  # in counted units (None if the amount is not a plain number)


def _limits_key(key: str) -> LimitsKey | None:
    parts = key.rsplit("/", 3)
    if len(parts) < 3 or not parts[-2].isdigit() or (granularity := GRANULARITIES.get(parts[-1])) is None:
        return None
    amount = parts[-3] if len(parts) == 4 else ""
    return LimitsKey(int(parts[-2]) * granularity.GRANULARITY.seconds,
                     int(amount) * UNIT if amount.isdigit() else None)


def _units(amount: float) -> int:
    """A cost in counted units: thousandths of a request, rounded up."""
    if type(amount) is int and amount >= 0:
        return amount * UNIT
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 2**40:
        raise InvalidValue(f"a cost must be a number >= 0, got {amount!r}")
    return math.ceil(round(amount * UNIT, 6))


def _requests(units: int) -> float:
    """Counted units as requests: an int when whole, as `limits`' own storages give."""
    whole, part = divmod(units, UNIT)
    return whole if not part else units / UNIT
