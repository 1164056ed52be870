"""A cluster that has long found itself, for simulations too large for every node to hold
a record of every other: N = 10,000 nodes would hold 10^8 member records, about 100 GB.

Each node's `Membership.members` becomes a `SharedRoster`: the same mapping to the
core (the same members, in the same order, the same records), but a record is made only
when the core first reads it, from one list of every node's `MemberInfo` that all the
nodes share, as `Membership.merge` would have made it when the node was introduced to
the rest. Direct probes alone (R23, `Simulation(rounds=False)`) read a few dozen records
per node in a run, so the rest are never made. A run is the very same as with
`Simulation.introduce_all` (tests/sim/test_roster.py checks it), only without the records
nobody read. Reading every record (a gossip round's view, phi's judging of all members)
makes them all, which is correct and as large as before: use it with probes alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gossip.membership import Member, MemberInfo, Membership
from simulations.engine import Simulation


class SharedRoster(dict[str, Member]):
    """One node's members: the records it made or was given (the dict itself), over the
    shared list of every node (`everyone`, in the order they were introduced)."""

    def __init__(self, everyone: Mapping[str, MemberInfo], membership: Membership, since_ms: int) -> None:
        super().__init__()
        self._everyone = everyone
        self._membership = membership
        self._me = membership.me.id
        self._since_ms = since_ms  # when the node was introduced: its records' first sighting
        self._dropped: set[str] = set()  # shared ones deleted (forgotten) since

    def _shared(self, key: object) -> bool:
        return key in self._everyone and key != self._me and key not in self._dropped

    def _make(self, key: str) -> Member:
        """The record `Membership.merge` makes on a first sighting, made now."""
        member = self._membership.new_record(self._everyone[key], self._since_ms)
        member.detector.heartbeat(self._since_ms)
        dict.__setitem__(self, key, member)
        return member

    def __getitem__(self, key: str) -> Member:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if self._shared(key):
            return self._make(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._shared(key)

    def __iter__(self) -> Iterator[str]:
        yield from (key for key in self._everyone if self._shared(key))
        yield from (key for key in dict.__iter__(self) if key not in self._everyone)

    def __len__(self) -> int:
        extra = sum(1 for key in dict.__iter__(self) if key not in self._everyone)
        return len(self._everyone) - (self._me in self._everyone) - len(self._dropped) + extra

    def __delitem__(self, key: str) -> None:
        if not self.__contains__(key):
            raise KeyError(key)
        if dict.__contains__(self, key):
            dict.__delitem__(self, key)
        if key in self._everyone:
            self._dropped.add(key)

    def keys(self) -> Any:
        return list(self)

    def values(self) -> Any:
        return [self[key] for key in self]

    def items(self) -> Any:
        return [(key, self[key]) for key in self]


def introduce_all_shared(sim: Simulation) -> None:
    """`Simulation.introduce_all` through one shared list: each node's members become a
    `SharedRoster` over it, its records made only as the core reads them."""
    nodes = list(sim.nodes.values())
    everyone = {n.protocol.membership.me.id: n.protocol.membership.me for n in nodes}
    for node in nodes:
        membership = node.protocol.membership
        membership.members = SharedRoster(everyone, membership, sim.node_ms(node))
        membership.forget_derived()
