"""What a node's gossip traffic amounts to, both ways: the messages and bytes it sent and
received by kind, the ones it served included, and each peer's clock offset from ours as
its answers tell it. The transport counts what it sends and the answers; the inbox what it
serves; /stats, /metrics and /health read it here."""

from __future__ import annotations

from collections import Counter

from node.wire.figures import OFFSET_BUCKETS, Buckets

MAX_PEERS_TRACKED = 1024  # clock offset histograms kept, one per peer address


class Traffic:
    def __init__(self) -> None:
        self.bytes_sent = 0  # (requests we sent, and the answers to them)
        self.bytes_received = 0
        # Messages and bytes by (kind, "sent" | "received"), served ones included.
        self.messages: Counter[tuple[str, str]] = Counter()
        self.message_bytes: Counter[tuple[str, str]] = Counter()
        self.offsets: dict[str, Buckets] = {}
        self.last_offset: dict[str, float] = {}  # seconds the peer's clock is ahead of ours

    def count(self, kind: str, direction: str, size: int) -> None:
        self.messages[kind, direction] += 1
        self.message_bytes[kind, direction] += size

    def round_trip(self, sent: int, received: int) -> None:
        """A request we sent and its answer, in bytes."""
        self.bytes_sent += sent
        self.bytes_received += received

    def offset(self, address: str, offset_ms: float) -> None:
        """Take in one estimate of the peer's clock offset (its time at the middle of our
        round trip, against ours)."""
        buckets = self.offsets.get(address)
        if buckets is None:
            if len(self.offsets) >= MAX_PEERS_TRACKED:
                oldest = next(iter(self.offsets))
                del self.offsets[oldest]
                self.last_offset.pop(oldest, None)
            buckets = self.offsets[address] = Buckets(OFFSET_BUCKETS)
        buckets.observe(offset_ms / 1000)
        self.last_offset[address] = offset_ms / 1000
