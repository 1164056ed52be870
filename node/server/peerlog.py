"""What our exchanges with each peer met with (answered, unreachable, or refused with a
status and the peer's reason) and whose gossip we refused: noted by the loops that send
(node.server.pump) and the inbox, read by /health (node.monitoring.health) and /metrics."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

from gossip.errors import NetworkError, PeerError, PeerRefused, PeerTimeout

MAX_HOSTS_TRACKED = 256  # hosts whose gossip we refused, remembered for /health


@dataclass(frozen=True, slots=True)
class Failure:
    at: float  # monotonic seconds
    kind: str  # "refused", "timeout", "unreachable", "bad answer", "error"
    detail: str
    status: int = 0  # the refusal's HTTP status
    reason: str = ""  # the refusal's reason, as the peer names it


@dataclass
class PeerLog:
    """Outcomes of our exchanges by peer address, for /health and /metrics. Each record is
    a dict store and a clock read: the paths that feed it gain next to nothing."""

    answered: dict[str, float] = field(default_factory=dict)  # address -> when it last took our gossip
    failed: dict[str, Failure] = field(default_factory=dict)  # address -> its last failure
    last_ok: float = -math.inf  # last exchange that worked, either way
    joined: bool = False  # some exchange ever worked
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # (peer, kind)
    refusals: Counter[tuple[str, int, str]] = field(default_factory=Counter)  # (peer, status, reason)
    refused_hosts: dict[str, Failure] = field(default_factory=dict)  # hosts whose gossip we refused

    def took(self, address: str) -> None:
        """A peer took our message (and we its answer)."""
        self.answered[address] = self.last_ok = time.monotonic()
        self.joined = True

    def heard(self) -> None:
        """We took a peer's message."""
        self.last_ok = time.monotonic()
        self.joined = True

    def failure(self, address: str, exc: BaseException) -> None:
        if isinstance(exc, PeerRefused):
            record = Failure(time.monotonic(), "refused", str(exc), exc.status, exc.reason)
            self.refusals[address, exc.status, exc.reason or str(exc.status)] += 1
        else:
            kind = ("timeout" if isinstance(exc, PeerTimeout)
                    else "unreachable" if isinstance(exc, NetworkError)
                    else "bad answer" if isinstance(exc, PeerError) else "error")
            record = Failure(time.monotonic(), kind, str(exc))
        self.failed[address] = record
        self.failures[address, record.kind] += 1

    def forget_before(self, cutoff: float) -> None:
        """Drop outcomes older than `cutoff` (monotonic seconds): peers come and go."""
        for table in (self.answered, self.failed, self.refused_hosts):
            for key in [k for k, v in table.items() if (v if isinstance(v, float) else v.at) < cutoff]:
                del table[key]

    def refused(self, host: str, status: int, reason: str, detail: str) -> None:
        """We refused gossip from `host`."""
        if host not in self.refused_hosts and len(self.refused_hosts) >= MAX_HOSTS_TRACKED:
            del self.refused_hosts[next(iter(self.refused_hosts))]
        self.refused_hosts[host] = Failure(time.monotonic(), "refused", detail, status, reason)
