"""Probe messages (R23) as the JSON values the wire carries, and back, every field checked
(gossip/codec.py frames them: version, cluster, type `probe`).

`kind`, `from` [id, address, generation, incarnation], `seq`, `notes` [[kind, member,
generation, incarnation, by], ...] (at most MAX_NOTES), and `target`: [id] for a ping,
[id, address] for a ping_req, absent otherwise."""

from __future__ import annotations

from typing import Any

from gossip.errors import MalformedMessage
from gossip.probe_messages import MAX_NOTES, NOTE_KINDS, PING, PING_REQ, PROBE_KINDS, Note, Probe
from gossip.wire_checks import as_array, as_int, as_items, as_text, field


def probe_to_wire(probe: Probe) -> dict[str, Any]:
    notes = [[n.kind, n.member, n.generation, n.incarnation, n.by] for n in probe.notes]
    sender = [probe.sender, probe.address, probe.generation, probe.incarnation]
    body: dict[str, Any] = {"kind": probe.kind, "from": sender, "seq": probe.seq, "notes": notes}
    if probe.kind == PING:
        body["target"] = [probe.target]
    elif probe.kind == PING_REQ:
        body["target"] = [probe.target, probe.target_address]
    return body


def probe_from_wire(obj: dict[str, Any]) -> Probe:
    """The fields after the frame of a probe message."""
    kind = field(obj, "kind")
    if not isinstance(kind, str) or kind not in PROBE_KINDS:
        raise MalformedMessage(f"kind must be one of {list(PROBE_KINDS)}, got {kind!r}")
    sender, address, generation, incarnation = as_items(field(obj, "from"), "from", 4)
    raw_notes = as_array(field(obj, "notes"), "notes")
    if len(raw_notes) > MAX_NOTES:
        raise MalformedMessage(f"more than {MAX_NOTES} notes")
    notes = tuple(_note(raw, f"notes[{i}]") for i, raw in enumerate(raw_notes))
    target = target_address = ""
    if kind in (PING, PING_REQ):
        items = as_items(field(obj, "target"), "target", 1 if kind == PING else 2)
        target = as_text(items[0], "target id")
        if kind == PING_REQ:
            target_address = as_text(items[1], "target address")
    elif "target" in obj:
        raise MalformedMessage(f"a {kind} has no target")
    seq = as_int(field(obj, "seq"), "seq")
    return Probe(kind, as_text(sender, "from id"), as_text(address, "from address"),
                 as_int(generation, "from generation"), as_int(incarnation, "from incarnation"),
                 seq, target, target_address, notes)


def _note(raw: object, path: str) -> Note:
    kind, member, generation, incarnation, by = as_items(raw, path, 5)
    if not isinstance(kind, str) or kind not in NOTE_KINDS:
        raise MalformedMessage(f"{path} kind must be one of {list(NOTE_KINDS)}, got {kind!r}")
    return Note(kind, as_text(member, f"{path} member"), as_int(generation, f"{path} generation"),
                as_int(incarnation, f"{path} incarnation"), as_text(by, f"{path} by"))
