"""The messages of direct probes (R23): what one node says of a member (a note), and the
one-way probe messages that carry notes (docs/PROTOCOL.md, "Wire format": `probe`)."""

from __future__ import annotations

from dataclasses import dataclass

from gossip.membership import ALIVE, DEAD, SUSPECT

PING, PING_REQ, ACK, NACK, NOTES = "ping", "ping_req", "ack", "nack", "notes"
PROBE_KINDS = (PING, PING_REQ, ACK, NACK, NOTES)
NOTE_KINDS = (ALIVE, SUSPECT, DEAD)
MAX_NOTES = 16  # notes one message carries at most (and a decoder accepts)
PIGGYBACK = 6  # notes that ride on a ping, ack or nack


@dataclass(frozen=True, slots=True)
class Note:
    """What one node says of a life of a member: alive at an incarnation (a refutation),
    suspect at an incarnation (and who suspects it), or dead at an incarnation."""

    kind: str  # one of NOTE_KINDS
    member: str
    generation: int
    incarnation: int
    by: str  # who suspects it, or who said so


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe message. The sender's header (id, address, generation, incarnation) comes
    with every kind; `seq` pairs a ping or ping_req with its ack or nack."""

    kind: str  # one of PROBE_KINDS
    sender: str
    address: str
    generation: int
    incarnation: int
    seq: int = 0
    target: str = ""  # ping: the member it is meant for; ping_req: the member to ping
    target_address: str = ""  # ping_req: where to ping it
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeOut:
    """A probe message to send, and where."""

    address: str
    message: Probe
