"""Virtual time: a heap of timed events, in integer microseconds so that it never
drifts. The simulator (simulations/engine.py) runs every node, message and fault on one
timeline; nothing here knows what an event does.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

US = 1_000_000  # microseconds in a virtual second


def to_us(seconds: float) -> int:
    return round(seconds * US)


class Timeline:
    """Events due at instants of virtual time, run in order: by instant, then by
    priority (lower first), then in the order they were scheduled."""

    def __init__(self) -> None:
        self.now_us = 0
        self._heap: list[tuple[int, int, int, Callable[[], None]]] = []
        self._seq = 0

    @property
    def now(self) -> float:
        """Virtual seconds since the start."""
        return self.now_us / US

    def at(self, when_us: int, action: Callable[[], None], priority: int = 0) -> None:
        """Run `action` at `when_us` (at once, if that has passed)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when_us, self.now_us), priority, self._seq, action))

    def after(self, seconds: float, action: Callable[[], None], priority: int = 0) -> None:
        self.at(self.now_us + to_us(seconds), action, priority)

    def run_until(self, seconds: float) -> None:
        """Process every event due up to `seconds` of virtual time."""
        end = to_us(seconds)
        heap = self._heap
        while heap and heap[0][0] <= end:
            when, _, _, action = heapq.heappop(heap)
            self.now_us = when
            action()
        self.now_us = max(self.now_us, end)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def wait_for(self, done: Callable[[], bool], timeout: float, step: float = 0.05) -> float | None:
        """Run until `done()` holds (checked every `step` virtual seconds); the virtual
        seconds it took, or None if `timeout` passed first."""
        start = self.now
        while not done():
            if self.now - start >= timeout:
                return None
            self.run_for(step)
        return self.now - start
