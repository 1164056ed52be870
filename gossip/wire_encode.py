"""Messages and snapshots as the JSON values the wire carries (gossip/codec.py frames them).

Lists rather than objects wherever a record has a fixed shape: entries, members, deltas
and timestamps are the bulk of every message. docs/PROTOCOL.md, "Wire format", names
every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gossip.clock import Timestamp
from gossip.jsontext import dumps
from gossip.membership import MemberInfo
from gossip.messages import ForgottenLife, RumorGroup, Snapshot, Summary, WriterDelta
from gossip.retired import RetiredSummary
from gossip.store import Entry


def entry_to_wire(e: Entry) -> list[Any]:
    return [e.key, e.value, e.wall, e.counter, int(e.deleted), e.expires_at]


def entry_size(e: Entry) -> int:
    """Bytes this entry adds to a message (close enough for a budget)."""
    return len(dumps(entry_to_wire(e))) + 1


def member_to_wire(m: MemberInfo) -> list[Any]:
    record: list[Any] = [m.id, m.address, m.generation, m.heartbeat, int(m.left)]
    if m.tags:  # (a member without tags keeps the five-item record)
        record.append(dict(m.tags))
    return record


def writers_to_wire(d: Mapping[str, Timestamp]) -> dict[str, list[int]]:
    """A writer -> timestamp map (a digest, watermarks or a horizon)."""
    return {origin: [ts.wall, ts.counter] for origin, ts in d.items()}


def delta_to_wire(d: WriterDelta) -> list[Any]:
    body: list[Any] = [d.origin, [*d.base], [*d.upto], [entry_to_wire(e) for e in d.entries]]
    if d.final:  # (only then: most deltas are of writers still alive)
        body.append(1)
    return body


def forgotten_to_wire(d: Mapping[str, ForgottenLife]) -> dict[str, list[int]]:
    return {node: [life.generation, *life.collected] for node, life in d.items()}


def _hex(value: int) -> str:
    return f"{value:016x}"


def retired_sum_to_wire(summary: RetiredSummary) -> list[Any]:
    """[count, root] or [count, root, buckets]: hashes as 16 hex digits each."""
    body: list[Any] = [summary.count, _hex(summary.root)]
    if summary.buckets is not None:
        body.append("".join(_hex(b) for b in summary.buckets))
    return body


def groups_to_wire(groups: tuple[RumorGroup, ...]) -> list[Any]:
    """A rumor's groups: [cover, items], an item being [origin, prev wall, prev counter, *entry]."""
    return [
        [list(g.cover), [[i.entry.origin, i.prev.wall, i.prev.counter, *entry_to_wire(i.entry)]
                         for i in g.items]]
        for g in groups
    ]


def summary_to_wire(message: Summary) -> dict[str, Any]:
    """The fields of an exchange or a reply after its type, in the order they are sent;
    the optional ones only when they say something."""
    body: dict[str, Any] = {
        "digest": writers_to_wire(message.digest),
        "members": [member_to_wire(m) for m in message.members],
        "delta": [delta_to_wire(d) for d in message.delta],
        "horizon": writers_to_wire(message.horizon),
        "retired": writers_to_wire(message.retired),
        "collected": [*message.collected],
        "boot": int(message.bootstrap),
        "more": int(message.more),
    }
    if (b := message.behind) is not None:
        body["behind"] = [b.reason, b.writer, b.mark.wall, b.mark.counter]
    if message.retired_sum.count:
        body["rsum"] = retired_sum_to_wire(message.retired_sum)
    if message.lineage:
        body["lineage"] = message.lineage
    if message.roster is not None:
        body["roster"] = message.roster
    if message.roster_end is not None:
        body["roster_end"] = int(message.roster_end)
        body["forgotten"] = forgotten_to_wire(message.forgotten)
        if message.forgotten_writers:
            body["forgotten_writers"] = writers_to_wire(message.forgotten_writers)
    return body


def snapshot_to_wire(snap: Snapshot) -> dict[str, Any]:
    """The fields of a snapshot after its type; an entry is [origin, *entry]."""
    return {
        "clock": [*snap.clock], "watermarks": writers_to_wire(snap.watermarks),
        "horizon": writers_to_wire(snap.horizon), "retired": writers_to_wire(snap.retired),
        "forgotten": forgotten_to_wire(snap.forgotten), "generation": snap.generation,
        "lineage": snap.lineage, "members": [member_to_wire(m) for m in snap.members],
        "entries": [[e.origin, *entry_to_wire(e)] for e in snap.entries],
        "forgotten_writers": writers_to_wire(snap.forgotten_writers),
    }
