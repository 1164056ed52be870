"""Phi accrual failure detection (Hayashibara et al.), as Cassandra and chitchat use it:
instead of a fixed timeout, each member's suspicion grows with the time since its
heartbeat last moved, measured against the intervals seen so far from it."""

from __future__ import annotations

import math
from collections import deque

_LOG10_E = math.log10(math.e)


class PhiAccrual:
    """Heartbeat arrivals of one member. With exponentially distributed intervals of
    mean m, the chance of a silence of t is e^(-t/m), so phi = -log10 of it =
    t / m * log10(e): phi 8 means one chance in 10^8 that the member is merely slow.

    `floor` is the shortest mean the detector assumes: how often the member's heartbeat
    is expected to move here at all (the membership sets it from the cluster's size and
    the view size, R17), so that a few lucky early intervals cannot make it hasty."""

    __slots__ = ("_intervals", "_sum", "_mean", "floor", "last")

    def __init__(self, window: int, first_interval_ms: float, floor_ms: float) -> None:
        # A prior interval, so one sample is not all we know.
        self._intervals: deque[float] = deque((first_interval_ms,), window)
        self._sum = first_interval_ms
        self._mean = first_interval_ms
        self.floor = floor_ms
        self.last: int | None = None

    def heartbeat(self, now_ms: int) -> None:
        if self.last is not None and now_ms > self.last:
            if len(self._intervals) == self._intervals.maxlen:
                self._sum -= self._intervals[0]
            interval = float(now_ms - self.last)
            self._intervals.append(interval)
            self._sum += interval
            self._mean = self._sum / len(self._intervals)
        self.last = now_ms

    def mean(self) -> float:
        return max(self.floor, self._mean)

    def phi(self, now_ms: int) -> float:
        if self.last is None:
            return 0.0
        silence = now_ms - self.last
        return silence * _LOG10_E / self.mean() if silence > 0 else 0.0
