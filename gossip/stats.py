"""What one node's protocol did, counted: for /health, /stats, metrics and tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Stats:
    rounds: int = 0
    exchanges_served: int = 0
    rumors_received: int = 0
    entries_applied: int = 0
    rejected: int = 0
    failures: int = 0
    collected: int = 0  # tombstones and expired entries dropped once every member held them
    retired: int = 0  # writers of ended lives moved from the digest to the retired set (R20)
    resets: int = 0  # times our state was found older than a peer's collections (R7c)
    refused_superseded: int = 0  # entries for keys we lack that our watermark already covers
    refused_stale: int = 0  # pushed entries too old to be news, for keys we lack
    dropped_unvouched: int = 0  # old entries our source could not vouch for, once caught up
    behind_peers: int = 0  # summaries refused because the peer's state predates our collections
    undecided: int = 0  # summaries whose delta we left because they did not tell enough to judge them
    by_peer_failures: dict[str, int] = field(default_factory=dict)

    def failed(self, address: str) -> None:
        """An exchange or push with `address` failed."""
        self.failures += 1
        self.by_peer_failures[address] = self.by_peer_failures.get(address, 0) + 1
