"""The modelled network: latency, loss, duplication and partitions. No protocol here."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

LossUnit = Literal["message", "exchange"]


@dataclass(frozen=True)
class NetworkModel:
    # One-way delay in seconds: base plus an exponential tail with this mean.
    latency: float = 0.001
    latency_tail: float = 0.0005
    # Probability that a message is lost. Per "message": each request, reply and rumor
    # on its own, so an exchange (request and reply) survives with (1 - loss)^2. Per
    # "exchange": a request is lost with that probability and a reply never on its own,
    # so an exchange either fails whole or succeeds whole (the loss model of the textbook
    # figures the synchronous mode is compared with, see simulations/theory.py).
    loss: float = 0.0
    loss_unit: LossUnit = "message"
    # Probability that a delivered message arrives twice.
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency", "latency_tail"):
            if getattr(self, name) < 0:
                raise ValueError(f"network field {name!r} must be >= 0")
        for name in ("loss", "duplicate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"network field {name!r} must be in [0, 1)")
        if self.loss_unit not in ("message", "exchange"):
            raise ValueError(f"network field 'loss_unit' must be message or exchange: {self.loss_unit!r}")


@dataclass
class Network:
    """Decides the fate of each message with its own RNG, so runs replay from a seed."""

    model: NetworkModel
    rng: random.Random
    # Named groups cut off from everyone outside them.
    cuts: dict[str, frozenset[str]] = field(default_factory=dict)
    # Named one-way cuts: nothing from the first group reaches the second.
    blocks: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    # Named lossy links: a message into the group from outside it is lost with this
    # probability (a host that drops a share of the packets it receives), on top of the
    # model's loss. Drawn only while one applies, so a run without them draws as before.
    lossy: dict[str, tuple[frozenset[str], float]] = field(default_factory=dict)

    def delay(self) -> float:
        tail = self.model.latency_tail
        return self.model.latency + (self.rng.expovariate(1 / tail) if tail > 0 else 0.0)

    def lost(self, reply: bool = False) -> bool:
        if reply and self.model.loss_unit == "exchange":
            return False
        return self.model.loss > 0 and self.rng.random() < self.model.loss

    def duplicated(self) -> bool:
        return self.model.duplicate > 0 and self.rng.random() < self.model.duplicate

    def connected(self, a: str, b: str) -> bool:
        """Whether a message from `a` reaches `b`: no cut or block stands between them, and
        no lossy link into `b` drops it (asked once per message, so it is drawn here)."""
        if not all((a in group) == (b in group) for group in self.cuts.values()):
            return False
        if any(a in src and b in dst for src, dst in self.blocks.values()):
            return False
        return not any(
            b in group and a not in group and self.rng.random() < p for group, p in self.lossy.values()
        )

    def cut(self, name: str, group: frozenset[str]) -> None:
        self.cuts[name] = group

    def block(self, name: str, src: frozenset[str], dst: frozenset[str]) -> None:
        self.blocks[name] = (src, dst)

    def lose(self, name: str, group: frozenset[str], p: float) -> None:
        """Messages into `group` from outside it are lost with probability `p`."""
        if not 0 <= p < 1:
            raise ValueError(f"a link's loss must be in [0, 1), not {p!r}")
        self.lossy[name] = (group, p)

    def heal(self, name: str) -> None:
        self.cuts.pop(name, None)
        self.blocks.pop(name, None)
        self.lossy.pop(name, None)
