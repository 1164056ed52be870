"""What the flood found: the answers per kind of attack, judged against those a correct
node gives, and the table `python -m scripts.flood` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass
class KindResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    sample: dict[str, str] = field(default_factory=dict)  # status -> one answer's detail


@dataclass
class FloodResult:
    requests: int
    nodes: int
    by_kind: dict[str, KindResult]
    expected: dict[str, frozenset[int]]
    accepted: int
    server_errors: int
    transport_errors: int
    unexpected: dict[str, Counter[str]]  # kind -> statuses outside its expected set
    refused_gossip: int  # /gossip answers that SharedState.receive counted as rejected
    rejected_before: int
    rejected_after: int
    rejected_by_reason: dict[str, int]
    replay_originals: int  # legitimate messages sent once so they could be replayed
    digest_before: dict[str, Any]
    digest_after: dict[str, Any]
    peer_digest_after: dict[str, Any] | None
    serving_after: bool
    legit_exchange_after: int
    propagated_after: bool
    p99_before_ms: float
    p99_during_ms: float
    p50_before_ms: float
    p50_during_ms: float
    probe_samples: tuple[int, int]
    probe_failures: tuple[int, int]
    rss_before_kib: int
    rss_after_kib: int
    seconds: float

    @property
    def rejected_delta(self) -> int:
        return self.rejected_after - self.rejected_before

    @property
    def ok(self) -> bool:
        return (self.accepted == 0 and self.server_errors == 0 and self.transport_errors == 0
                and not self.unexpected and self.digest_before == self.digest_after and self.serving_after
                and self.legit_exchange_after == 200 and self.propagated_after
                and self.rejected_delta == self.refused_gossip)

    def table(self) -> str:
        codes = sorted({s for r in self.by_kind.values() for s in r.statuses}, key=lambda s: (len(s), s))
        width = max(len(k) for k in self.by_kind) + 2
        cols = {c: max(7, len(c)) + 1 for c in codes}
        head = f"{'kind':<{width}}{'sent':>6}" + "".join(f"{c:>{cols[c]}}" for c in codes) + "  expected"
        lines = [head, "-" * len(head)]
        for name, r in self.by_kind.items():
            cells = "".join(f"{r.statuses.get(c, 0) or '.':>{cols[c]}}" for c in codes)
            expected = ",".join(map(str, sorted(self.expected[name])))
            flag = "" if name not in self.unexpected else "  <-- UNEXPECTED"
            lines.append(f"{name:<{width}}{r.sent:>6}{cells}  {expected}{flag}")
        total: Counter[str] = Counter()
        for r in self.by_kind.values():
            total.update(r.statuses)
        lines.append("-" * len(head))
        sent = sum(r.sent for r in self.by_kind.values())
        lines.append(f"{'total':<{width}}{sent:>6}" + "".join(f"{total.get(c, 0):>{cols[c]}}" for c in codes))
        growth = (self.rss_after_kib - self.rss_before_kib) / 1024
        lines += [
            "",
            f"requests: {sent} in {self.seconds:.1f} s to a {self.nodes}-node cluster; accepted (2xx): "
            f"{self.accepted}; 5xx: {self.server_errors}; transport errors: {self.transport_errors}",
            f"gossip refusals counted in /stats: {self.rejected_delta} (expected {self.refused_gossip}): "
            f"{self.rejected_by_reason}",
            f"legitimate originals sent once so they could be replayed (not part of the flood): "
            f"{self.replay_originals}",
            f"state digest before: {self.digest_before}",
            f"state digest after:  {self.digest_after}  "
            + ("UNCHANGED" if self.digest_before == self.digest_after else "CHANGED"),
            f"peer digest after:   {self.peer_digest_after}",
            f"after the flood: /health {'200' if self.serving_after else 'FAILED'}, a legitimately signed "
            f"exchange -> {self.legit_exchange_after}, a write on n2 reached n1: {self.propagated_after}",
            f"legitimate GET /get, p50 / p99: before {self.p50_before_ms:.2f} / {self.p99_before_ms:.2f} ms "
            f"({self.probe_samples[0]} reads, {self.probe_failures[0]} failed); during "
            f"{self.p50_during_ms:.2f} / {self.p99_during_ms:.2f} ms ({self.probe_samples[1]} reads, "
            f"{self.probe_failures[1]} failed); p99 ratio {self.p99_during_ms / self.p99_before_ms:.1f}x",
            f"node RSS: {self.rss_before_kib / 1024:.1f} MiB before, "
            f"{self.rss_after_kib / 1024:.1f} MiB after (growth {growth:+.1f} MiB)",
            f"verdict: {'PASS' if self.ok else 'FAIL'}",
        ]
        return "\n".join(lines)


class Tally(NamedTuple):
    accepted: int  # 2xx answers
    server_errors: int  # 5xx answers
    refused_gossip: int  # /gossip answers that SharedState.receive counted as rejected
    unexpected: dict[str, Counter[str]]  # kind -> answers outside its expected set


def tally(results: dict[str, KindResult], expected: dict[str, frozenset[int]],
          gossip_kinds: set[str]) -> Tally:
    """Judge every answer by the kind of attack it answered."""
    unexpected: dict[str, Counter[str]] = {}
    accepted = server_errors = refused = 0
    for name, r in results.items():
        for status, n in r.statuses.items():
            if status.isdigit() and 200 <= int(status) < 300:
                accepted += n
            if status.isdigit() and int(status) >= 500:
                server_errors += n
            if status.isdigit() and int(status) not in expected[name]:
                unexpected.setdefault(name, Counter())[status] += n
            if not status.isdigit():
                unexpected.setdefault(name, Counter())[status] += n
            # SharedState.receive counts what it refuses; 413 is refused before it is reached
            if name in gossip_kinds and status in ("400", "401", "403", "409"):
                refused += n
    # an oversized body to /set is no gossip, but "oversized" kinds are only ever 413
    return Tally(accepted, server_errors, refused, unexpected)
