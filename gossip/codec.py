"""The one wire format: compact JSON with a protocol version and a cluster id.

Both the HTTP transport and the in-memory network use it, so byte counts are real.
Decoding checks every type and limit; nothing half-checked reaches the protocol.

This module frames messages and snapshots (version, cluster, type) and checks the frame
of what comes in; the rest is in the wire modules: the fields as JSON values
(wire_encode.py), the fields decoded and checked (wire_decode.py), the records they hold
(wire_records.py), the checks of single values (wire_checks.py), and the probe messages of
direct probes, R23, both ways (wire_probe.py).
"""

from __future__ import annotations

from typing import Any

from gossip.config import Config
from gossip.errors import IncompatibleMessage, MalformedMessage
from gossip.jsontext import JSONDecodeError, dumps, loads
from gossip.messages import Exchange, Message, Rumor, Snapshot
from gossip.probe_messages import Probe
from gossip.wire_checks import as_object, field
from gossip.wire_decode import Decoder
from gossip.wire_encode import groups_to_wire, member_to_wire, snapshot_to_wire, summary_to_wire
from gossip.wire_probe import probe_from_wire, probe_to_wire

PROTOCOL_VERSION = 3
SNAPSHOT_VERSIONS = (1, 2, 3)  # snapshots of versions 1 and 2 still load
_KINDS = frozenset({"exchange", "reply", "rumor"})


class Codec:
    def __init__(self, config: Config) -> None:
        self.config = config

    def encode(self, message: Message) -> bytes:
        body: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "cluster": self.config.cluster_id,
            "sender": member_to_wire(message.sender),
        }
        if isinstance(message, Rumor):
            body["type"] = "rumor"
            body["groups"] = groups_to_wire(message.groups)
        else:
            body["type"] = "exchange" if isinstance(message, Exchange) else "reply"
            body.update(summary_to_wire(message))
        return dumps(body)

    def encode_snapshot(self, snap: Snapshot) -> bytes:
        return dumps({"v": PROTOCOL_VERSION, "cluster": self.config.cluster_id, "type": "snapshot",
                      **snapshot_to_wire(snap)})

    def encode_probe(self, probe: Probe) -> bytes:
        """A probe message (R23; wire_probe.py names its fields)."""
        return dumps({"v": PROTOCOL_VERSION, "cluster": self.config.cluster_id, "type": "probe",
                      **probe_to_wire(probe)})

    def decode_probe(self, data: bytes) -> Probe:
        obj = _json_object(data, "body", "message")
        kind = self._frame(obj)
        if kind != "probe":
            raise MalformedMessage(f"type must be 'probe', got {kind!r}")
        return probe_from_wire(obj)

    def decode(self, data: bytes) -> Message:
        obj = _json_object(data, "body", "message")
        return Decoder(self.config).message(self._kind(obj), obj)

    def decode_snapshot(self, data: bytes) -> Snapshot:
        """A snapshot file, checked like any message (it may be damaged or foreign)."""
        obj = _json_object(data, "snapshot", "snapshot")
        if obj.get("v") not in SNAPSHOT_VERSIONS or obj.get("cluster") != self.config.cluster_id:
            raise IncompatibleMessage("snapshot of another protocol version or cluster")
        return Decoder(self.config, max_entries=2**62).snapshot(obj)  # a snapshot holds the whole state

    def _kind(self, obj: dict[str, Any]) -> str:
        """The type of a message whose frame is this node's: its protocol version and cluster."""
        kind = self._frame(obj)
        if not isinstance(kind, str) or kind not in _KINDS:  # a list or object is unhashable
            raise MalformedMessage(f"type must be one of {sorted(_KINDS)}, got {kind!r}")
        return kind

    def _frame(self, obj: dict[str, Any]) -> object:
        """The type of a message, once its protocol version and cluster are found to be ours."""
        for name in ("v", "cluster", "type"):
            field(obj, name)
        version = obj["v"]
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise IncompatibleMessage(
                f"protocol version {version!r}, this node speaks {PROTOCOL_VERSION}"
            )
        cluster = obj.get("cluster")
        if cluster != self.config.cluster_id:
            raise IncompatibleMessage(
                f"cluster id {cluster!r}, this node is in {self.config.cluster_id!r}"
            )
        return obj.get("type")


def _json_object(data: bytes, what: str, path: str) -> dict[str, Any]:
    """The JSON object `data` holds; MalformedMessage, naming `what`, if it holds none."""
    try:
        body = loads(data)
    except JSONDecodeError as exc:
        raise MalformedMessage(f"{what} is not JSON: {exc}") from exc
    return as_object(body, path)
