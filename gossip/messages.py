"""The messages nodes exchange. Frozen dataclasses; bytes are the codec's business."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gossip.clock import ZERO, Timestamp
from gossip.membership import MemberInfo
from gossip.store import Entry


@dataclass(frozen=True, slots=True)
class WriterDelta:
    """Entries of one writer with base < ts <= upto, in ts order: the receiver that held
    everything up to base holds everything up to upto after applying it."""

    origin: str
    base: Timestamp
    upto: Timestamp
    entries: tuple[Entry, ...]


# Why a node holds state older than the cluster's collections (docs/PROTOCOL.md, R7c).
HORIZON = "horizon"  # it lacks a writer's history up to a collected delete of that writer
FORGOTTEN = "forgotten"  # its life was forgotten (reaped) by the sender, who has collected since
BEHIND_REASONS = (HORIZON, FORGOTTEN)


@dataclass(frozen=True, slots=True)
class Behind:
    """Evidence, sent to a peer, that its state predates collections it never saw, so
    that merging it could bring deleted keys back: `writer` and `mark` say which."""

    reason: str  # one of BEHIND_REASONS
    writer: str  # the writer concerned (for FORGOTTEN: the receiver's node id)
    mark: Timestamp  # the collection it missed (for FORGOTTEN: its generation, as (gen, 0))


@dataclass(frozen=True, slots=True)
class Summary:
    """What an Exchange and its Reply carry: the sender's digest, view and collection
    state, and the delta the receiver lacks."""

    sender: MemberInfo
    digest: Mapping[str, Timestamp]
    members: tuple[MemberInfo, ...]
    delta: tuple[WriterDelta, ...]
    # Per writer, the newest of its entries the sender has collected (writers in the digest).
    horizon: Mapping[str, Timestamp] = field(default_factory=dict)
    # Retired writers (every member held all of them: gone from digests), and where they end.
    retired: Mapping[str, Timestamp] = field(default_factory=dict)
    collected: Timestamp = ZERO  # the newest entry the sender has ever collected
    bootstrap: bool = False  # the sender is catching up from scratch (R7d)
    resync: bool = False  # the sender asks for every retired writer (a node restored: R19)
    more: bool = False  # the delta was cut: there is more to send
    behind: Behind | None = None  # the receiver must reset (R7c)


@dataclass(frozen=True, slots=True)
class Exchange(Summary):
    """A round's request: our digest and view, and what the peer was known to lack."""


@dataclass(frozen=True, slots=True)
class Reply(Summary):
    """The answer to an Exchange: what the requester lacks by its digest, and ours."""


@dataclass(frozen=True, slots=True)
class RumorItem:
    """A fresh write and its writer's previous write's ts, so a receiver that held
    everything up to prev may move its watermark for that writer to entry.ts."""

    entry: Entry
    prev: Timestamp


@dataclass(frozen=True, slots=True)
class RumorGroup:
    """Pushed items and the peers the receiver is to pass them on to (`cover`), which it
    splits among `fanout` of them in turn: one push reaches each member once, along a
    random tree of depth about log_fanout N."""

    cover: tuple[str, ...]
    items: tuple[RumorItem, ...]


@dataclass(frozen=True, slots=True)
class Rumor:
    """Eagerly pushed writes: all that waited for one peer, in groups by cover."""

    sender: MemberInfo
    groups: tuple[RumorGroup, ...]

    @property
    def items(self) -> tuple[RumorItem, ...]:
        return tuple(item for group in self.groups for item in group.items)

    @classmethod
    def of(cls, sender: MemberInfo, items: tuple[RumorItem, ...], cover: tuple[str, ...] = ()) -> Rumor:
        """A push of one group (none if there is nothing in it)."""
        return cls(sender, (RumorGroup(cover, items),) if items or cover else ())


Message = Exchange | Reply | Rumor


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for the driver (node/ or the simulator) to deliver to `address`."""

    address: str
    message: Message


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a node needs to restart with its state: what `--data-dir` keeps."""

    clock: Timestamp  # the highest timestamp issued or seen: new writes start above it
    watermarks: Mapping[str, Timestamp]
    horizon: Mapping[str, Timestamp]
    entries: tuple[Entry, ...]
    retired: Mapping[str, Timestamp] = field(default_factory=dict)
    forgotten: Mapping[str, int] = field(default_factory=dict)  # node id -> last life reaped
