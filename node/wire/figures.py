"""Histograms kept as plain counts, cheap enough for the paths that feed them (each costs a
bisect and two additions); node.monitoring.metrics turns them into Prometheus histograms on a scrape."""

from __future__ import annotations

from bisect import bisect_left

# Seconds from a write at its origin to its application here.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
               300.0)
# Seconds a peer's clock runs ahead of ours (negative: behind).
OFFSET_BUCKETS = (-60.0, -10.0, -5.0, -1.0, -0.25, -0.05, -0.01, -0.001,
                  0.001, 0.01, 0.05, 0.25, 1.0, 5.0, 10.0, 60.0)


class Buckets:
    """Observations counted by upper bound (each in the first bucket whose bound is >= it,
    the last one unbounded), with their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) in Prometheus' form, +Inf last."""
        out, total = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out
