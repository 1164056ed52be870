"""Lifeguard's two measures for direct probes (R23). How long a suspected member has to
refute a suspicion: a timeout that scales with log10 of the cluster's size and shrinks as
other members independently confirm it (the dynamic suspicion timeout, as in memberlist).
And a node's *local health*: a score that stretches its own probe interval and timeout
while the fault may be its own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gossip.config import Config


def suspicion_bounds_ms(config: Config, members: int) -> tuple[float, float]:
    """The shortest and the longest suspicion timeout, in ms, for a cluster of `members`:
    suspicion_mult x log10(N) x probe_interval (at least one log10 step, for small
    clusters), and suspicion_max_mult times that."""
    shortest = config.suspicion_mult * max(1.0, math.log10(max(1, members))) * config.probe_interval * 1000
    return shortest, shortest * config.suspicion_max_mult


def confirmations_needed(config: Config, members: int) -> int:
    """Confirmations that bring a suspicion to its shortest timeout: at most the members
    other than the suspect and the first suspecter, so a small cluster is not held to a
    number of witnesses it does not have."""
    return max(0, min(config.suspicion_confirmations, members - 2))


def timeout_ms(shortest: float, longest: float, confirmations: int, needed: int) -> float:
    """The timeout after `confirmations` of `needed`: from `longest` down to `shortest`
    along log(c + 1) / log(needed + 1), so the first confirmations count the most."""
    if needed <= 0 or confirmations >= needed:
        return shortest
    fraction = math.log(confirmations + 1) / math.log(needed + 1)
    return max(shortest, longest - (longest - shortest) * fraction)


@dataclass(slots=True)
class Suspicion:
    """One node's suspicion of one life of a member at one incarnation."""

    generation: int
    incarnation: int
    started: int  # local ms when we began to suspect it
    shortest: float
    longest: float
    needed: int
    first: str  # who suspected it first here (it confirms nothing)
    confirmers: set[str] = field(default_factory=set)
    check: str = ""  # the last check before it runs out (probes.py): "", "running" or "failed"

    def confirm(self, by: str) -> bool:
        """Another member suspects it too; True if that is a new, independent witness."""
        if by == self.first or by in self.confirmers or len(self.confirmers) >= self.needed:
            return False
        self.confirmers.add(by)
        return True

    def deadline(self) -> int:
        """Local ms at which the member is declared dead, unless refuted before."""
        timeout = timeout_ms(self.shortest, self.longest, len(self.confirmers), self.needed)
        return self.started + math.ceil(timeout)


MAX_HEALTH = 8  # the local health score's ceiling: timeouts stretch at most 9-fold


@dataclass(slots=True)
class LocalHealth:
    """0 healthy, up to MAX_HEALTH: raised when this node's probes fail with the helpers
    silent too, when it must refute a suspicion of itself, or when it finds it was stopped;
    lowered by each probe that succeeds. Its timeouts are scaled by 1 + score."""

    score: int = 0

    def worse(self) -> None:
        self.score = min(MAX_HEALTH, self.score + 1)

    def better(self) -> None:
        self.score = max(0, self.score - 1)

    def scaled_ms(self, seconds: float) -> int:
        return int(seconds * 1000 * (1 + self.score))
