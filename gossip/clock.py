"""Hybrid Logical Clock (Kulkarni et al.): timestamps that never go backwards,
exceed every timestamp seen, and stay close to wall time. Wall time is passed in."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from gossip.errors import ClockSkewRejected


class Timestamp(NamedTuple):
    """(wall_ms, counter); tuples compare lexicographically, which is the HLC order."""

    wall: int
    counter: int


ZERO = Timestamp(0, 0)


class Stamped(Protocol):
    """What has a timestamp's wall time: a Timestamp, an entry."""

    @property
    def wall(self) -> int: ...


class HybridClock:
    def __init__(self, max_offset_ms: int, floor: Timestamp = ZERO) -> None:
        self.max_offset_ms = max_offset_ms
        self.last = floor  # the highest timestamp issued or observed

    def tick(self, wall_ms: int) -> Timestamp:
        """A new timestamp for a local event, above every one issued or seen."""
        if wall_ms > self.last.wall:
            self.last = Timestamp(wall_ms, 0)
        else:  # the wall clock stalled or went back: count on from the last one
            self.last = Timestamp(self.last.wall, self.last.counter + 1)
        return self.last

    def check(self, remote: Stamped, wall_ms: int) -> None:
        """Refuse a remote timestamp (or an entry's) too far ahead of our wall clock."""
        if remote.wall > wall_ms + self.max_offset_ms:
            raise ClockSkewRejected(
                f"timestamp {remote.wall} ms is {remote.wall - wall_ms} ms ahead of local "
                f"wall time (max_offset is {self.max_offset_ms} ms)"
            )

    def observe(self, remote: Timestamp, wall_ms: int) -> None:
        """Take in a remote timestamp (already checked) so later ticks exceed it."""
        self.check(remote, wall_ms)
        if remote > self.last:
            self.last = remote
