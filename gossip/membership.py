"""Who is in the cluster: seeds to join through, members learned from peers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What a node says about a member: the newer (generation, heartbeat) wins."""

    id: str
    address: str  # base URL peers send gossip to
    generation: int  # set when the node starts; a restarted node has a higher one
    heartbeat: int  # counts the node's own rounds

    def newer_than(self, other: MemberInfo) -> bool:
        return (self.generation, self.heartbeat) > (other.generation, other.heartbeat)


@dataclass(slots=True)
class Member:
    info: MemberInfo
    last_heard: int  # local wall ms when its heartbeat last moved
    status: str = "alive"


@dataclass
class Membership:
    me: MemberInfo
    seeds: tuple[str, ...] = ()
    members: dict[str, Member] = field(default_factory=dict)

    def beat(self) -> None:
        self.me = MemberInfo(
            self.me.id, self.me.address, self.me.generation, self.me.heartbeat + 1
        )

    def view(self) -> list[MemberInfo]:
        return [self.me, *(m.info for m in self.members.values())]

    def merge(self, infos: list[MemberInfo], now_ms: int) -> None:
        for info in infos:
            if info.id == self.me.id:
                continue
            known = self.members.get(info.id)
            if known is None:
                self.members[info.id] = Member(info, now_ms)
            elif info.newer_than(known.info):
                known.info = info
                known.last_heard = now_ms
                known.status = "alive"

    def add_seeds(self, addresses: list[str]) -> None:
        fresh = [a for a in addresses if a not in self.seeds and a != self.me.address]
        self.seeds = (*self.seeds, *fresh)

    def knows_address(self, address: str) -> bool:
        return address == self.me.address or any(
            m.info.address == address for m in self.members.values()
        )

    def live_addresses(self) -> list[str]:
        return sorted(m.info.address for m in self.members.values() if m.status == "alive")

    def pick_peers(self, count: int, rng: random.Random) -> list[str]:
        """Addresses of up to `count` random live peers, plus one seed we have not
        yet met, so a node told only seeds finds the cluster."""
        live = self.live_addresses()
        picked = rng.sample(live, min(count, len(live)))
        unmet = [s for s in self.seeds if not self.knows_address(s)]
        if unmet:
            picked.append(rng.choice(unmet))
        return picked
