"""One simulated node: the real core (GossipProtocol), its clock offset and whether its
process runs. simulations/engine.py keeps them; its delivery (simulations/delivery.py)
carries their messages."""

from __future__ import annotations

from dataclasses import dataclass

from gossip.protocol import GossipProtocol


@dataclass
class SimNode:
    id: str
    address: str
    protocol: GossipProtocol
    offset_ms: int = 0  # this node's clock = virtual time + offset (clock skew)
    up: bool = True
    incarnation: int = 0  # bumped on crash: events of an older life are dropped
    probe_at: int | None = None  # virtual us of its next probe tick (R23), if one is scheduled
    slow: float = 0.0  # seconds each of its handlers waits before it runs (an overloaded node)
