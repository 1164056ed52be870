"""What the simulated clients saw acknowledged, and which of those writes some node
lacks: the simulator's own measure of loss (Simulation.lost_acks), and whether an entry
holds a write (or beats it). The fault checker
keeps a finer ledger of what the contract lets go (simulations/check_ledger.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gossip.clock import Timestamp
from gossip.store import JSON, Entry
from simulations.simnode import SimNode


@dataclass(frozen=True)
class Ack:
    """A write the simulated client saw acknowledged."""

    key: str
    value: JSON
    ts: Timestamp
    origin: str
    deleted: bool
    at_us: int
    expires_at: int | None = None


def holds(entry: Entry | None, op: Entry) -> bool:
    """Whether a node holding `entry` for the key holds `op` or something that beats it."""
    return entry is not None and (entry == op or entry.wins_over(op))


def lost_acks(acks: list[Ack], nodes: Iterable[SimNode],
              node_ms: Callable[[SimNode], int]) -> list[tuple[str, Ack]]:
    """(node, write) for each write of `acks` one of `nodes` neither holds nor holds
    something newer for: a write superseded by a later timestamp is not lost, nor is one
    whose key was last deleted or expired (by the node's clock), and collected since."""
    newest: dict[str, Ack] = {}
    for ack in acks:
        if ack.key not in newest or (ack.ts, ack.origin) > (newest[ack.key].ts, newest[ack.key].origin):
            newest[ack.key] = ack
    lost = []
    for node in nodes:
        for ack in acks:
            entry = node.protocol.store.get(ack.key)
            last = newest[ack.key]
            gone = last.deleted or (last.expires_at is not None and last.expires_at <= node_ms(node))
            if entry is None and gone:
                continue  # deleted or expired last, and collected since
            if entry is None or (entry.ts, entry.origin) < (ack.ts, ack.origin):
                lost.append((node.id, ack))
    return lost
