"""A storage backend for the `limits` package (and so for slowapi), counting in the shared
state, so that a limiter switches from per-worker to fleet-wide with one line:

    limiter = Limiter(key_func=get_remote_address, storage_uri=node.limits_storage.URI)

It counts in windows aligned to wall time on every node (for the fixed-window strategy,
a window starts at a multiple of its length rather than at its first hit) and supports the
sliding-window-counter strategy; not the moving window, which needs every hit's time. Like
our own RateLimit, it is approximate by design: other nodes' hits arrive after the
propagation delay. Counts cannot be cleared fleet-wide (that needs the nodes to agree): a
window ends by itself.
"""

from __future__ import annotations

import time
from typing import Any

from limits.limits import GRANULARITIES
from limits.storage import SlidingWindowCounterSupport, Storage

from gossip.ratelimit import Rate
from node.state import SharedState, running_state

URI = "gossip://"


class GossipStorage(Storage, SlidingWindowCounterSupport):
    STORAGE_SCHEME = ["gossip"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self._state: SharedState | None = options.get("state")
        self._lengths: dict[str, float] = {}  # key -> window length, as incr() was told

    @property
    def state(self) -> SharedState:
        """The node running in this process, found at the first hit (the limiter is
        usually built before the app's lifespan has started it)."""
        return self._state if self._state is not None else running_state()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return RuntimeError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self._lengths[key] = expiry
        return self.state.incr_window(key, expiry, amount).current

    def get(self, key: str) -> int:
        return self.state.window_count(key, self._length(key)).current

    def get_expiry(self, key: str) -> float:
        seen = self.state.window_count(key, self._length(key))
        return time.time() + seen.resets_in_ms / 1000

    def check(self) -> bool:
        try:
            return self.state is not None
        except RuntimeError:
            return False

    def reset(self) -> int | None:
        raise NotImplementedError("fleet-wide counts cannot be cleared: windows end by themselves")

    def clear(self, key: str) -> None:
        raise NotImplementedError("a fleet-wide count cannot be cleared: its window ends by itself")

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.state.admit(key, Rate(limit, expiry), amount).allowed

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        seen = self.state.window_count(key, expiry)
        left = seen.resets_in_ms / 1000
        return seen.previous, left, seen.current, left + expiry

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.clear(key)

    def _length(self, key: str) -> float:
        """A window's length: as incr() was told, or read from the key `limits` builds
        ('.../<amount>/<multiples>/<granularity>')."""
        if key in self._lengths:
            return self._lengths[key]
        _, multiples, granularity = key.rsplit("/", 2)
        return int(multiples) * GRANULARITIES[granularity].GRANULARITY.seconds
