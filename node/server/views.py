"""What a node can say about itself and its cluster, read under the local state's lock and
handed out as copies: the members as it sees them, its counters (GET /stats, /metrics),
what /health weighs, and who is gone or serving (the service registry and the jobs)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gossip.membership import ALIVE, DEAD, LEFT, SUSPECT, MemberEvent
from gossip.store import writer_id
from node.server.inbox import Inbox
from node.server.local_state import LocalState
from node.server.pump import Pump
from node.wire.traffic import Traffic
from node.wire.transport import wall_ms


class Views:
    def __init__(self, local: LocalState, pump: Pump, inbox: Inbox, traffic: Traffic) -> None:
        self.local, self.protocol = local, local.protocol
        self.pump, self.inbox, self.traffic = pump, inbox, traffic

    def members(self) -> list[dict[str, Any]]:
        """Every member as this node sees it, itself included, sorted by id; with direct
        probes on (R23), their verdict, incarnations and suspicions too."""
        now = wall_ms()
        with self.local.lock:
            me, probes = self.protocol.membership.me, self.protocol.probes
            out: list[dict[str, Any]] = [{
                "id": me.id, "address": me.address, "status": "left" if me.left else "alive", "self": True,
                "generation": me.generation, "heartbeat": me.heartbeat, "phi": 0.0, "last_heard_ms_ago": 0,
                "tags": dict(me.tags),
            }]
            if probes is not None:
                out[0].update(incarnation=probes.incarnation, local_health=probes.health)
            for m in self.protocol.membership.members.values():
                out.append({
                    "id": m.info.id, "address": m.info.address, "status": m.status, "self": False,
                    "generation": m.info.generation, "heartbeat": m.info.heartbeat,
                    "phi": round(m.detector.phi(now), 2), "last_heard_ms_ago": max(0, now - m.last_heard),
                    "tags": dict(m.info.tags),
                })
                if probes is not None:
                    out[-1].update(probes.describe(m.info.id, now))
        return sorted(out, key=lambda m: str(m["id"]))

    def cluster_view(self) -> tuple[tuple[str, ...], Counter[str]]:
        """Our seeds, and how many other members we know by status (for /health)."""
        with self.local.lock:
            membership = self.protocol.membership
            return membership.seeds, Counter(m.status for m in membership.members.values())

    def member_events(self) -> list[MemberEvent]:
        """Changes in members' standing since the last call (node.monitoring.memberlog
        logs them)."""
        with self.local.lock:
            events = self.protocol.membership.events
            drained = list(events)
            events.clear()
        return drained

    def departed(self) -> set[str]:
        """The ids of the members this node sees as dead or left, itself if it left."""
        with self.local.lock:
            membership = self.protocol.membership
            gone = {m.info.id for m in membership.members.values() if m.status in (DEAD, LEFT)}
            if membership.me.left:
                gone.add(membership.me.id)
        return gone

    def found_dead(self, member_id: str) -> bool:
        """Whether this node sees the member dead, or knows it no more (forgotten). Not one
        that left: it said goodbye, and its last writes may come after that, by another path."""
        with self.local.lock:
            member = self.protocol.membership.members.get(member_id)
            return member is None or member.status == DEAD

    def serving(self) -> list[str] | None:
        """The ids of this node and of the members it sees alive or suspect; None while it
        has met no member yet (it has seeds to join through) or has left."""
        with self.local.lock:
            membership = self.protocol.membership
            if membership.me.left or (membership.seeds and not membership.members):
                return None
            live = [m.info.id for m in membership.members.values() if m.status in (ALIVE, SUSPECT)]
        return [self.local.id, *live]

    def entry_counts(self) -> tuple[int, int]:
        """(live entries, deleted or expired ones) held, the project's own included (for
        /metrics: counted on a copy, outside the lock)."""
        with self.local.lock:
            entries = list(self.protocol.store.entries())
        now = wall_ms()
        live = sum(1 for e in entries if e.is_live(now))
        return live, len(entries) - live

    def stats(self) -> dict[str, Any]:
        c, source = self.protocol.stats, self.protocol.caught_up_from
        return {
            "node": self.local.id,
            "rounds": c.rounds,
            "exchanges_served": c.exchanges_served,
            "rumors_received": c.rumors_received,
            "pushes_sent": self.pump.pushes_sent,
            "push_seconds": round(self.pump.push_seconds, 6),
            "entries_applied": c.entries_applied,
            "rejected": sum(self.inbox.rejected.values()),
            "rejected_by_reason": dict(self.inbox.rejected),
            "failures": c.failures,
            "failures_by_peer": dict(c.by_peer_failures),
            "collected": c.collected,
            "retired_writers": c.retired,
            "resets": c.resets,
            "refused_superseded": c.refused_superseded,
            "refused_stale": c.refused_stale,
            "dropped_unvouched": c.dropped_unvouched,
            "behind_peers": c.behind_peers,
            "undecided": c.undecided,
            "catching_up": self.protocol.bootstrapping,
            "caught_up_from": None if source is None else writer_id(*source),
            "bytes_sent": self.traffic.bytes_sent,
            "bytes_received": self.traffic.bytes_received,
        }
