"""The messages nodes exchange. Frozen dataclasses; bytes are the codec's business."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gossip.clock import ZERO, Timestamp
from gossip.membership import MemberInfo
from gossip.retired import EMPTY, RetiredSummary
from gossip.store import Entry


@dataclass(frozen=True, slots=True)
class WriterDelta:
    """Entries of one writer with base < ts <= upto, in ts order: the receiver that held
    everything up to base holds everything up to upto after applying it."""

    origin: str
    base: Timestamp
    upto: Timestamp
    entries: tuple[Entry, ...]
    final: bool = False  # the sender has `origin` retired, ending at upto (R20)


# Why a node holds state older than the cluster's collections (docs/PROTOCOL.md, R7c).
HORIZON = "horizon"  # it lacks a writer's history up to a collected delete of that writer
FORGOTTEN = "forgotten"  # its state is that of a life the sender forgot (reaped), and has collected since
BEHIND_REASONS = (HORIZON, FORGOTTEN)


@dataclass(frozen=True, slots=True)
class Behind:
    """Evidence, sent to a peer, that its state predates collections it never saw, so
    that merging it could bring deleted keys back: `writer` and `mark` say which."""

    reason: str  # one of BEHIND_REASONS
    writer: str  # the writer concerned (for FORGOTTEN: the receiver's node id)
    mark: Timestamp  # the collection it missed (for FORGOTTEN: its lineage, as (lineage, 0))


@dataclass(frozen=True, slots=True)
class ForgottenLife:
    """A member's life we forgot (R18): if its state comes back, having missed what we
    collected since, it may hold keys deleted meanwhile (R7c)."""

    generation: int
    collected: Timestamp  # the newest entry we had collected when we forgot it


@dataclass(frozen=True, slots=True)
class Summary:
    """What an Exchange and its Reply carry: the sender's digest, view and collection
    state, and the delta the receiver lacks."""

    sender: MemberInfo
    digest: Mapping[str, Timestamp]  # the writers the sender lists one by one
    members: tuple[MemberInfo, ...]  # a view (R13), or a page of the roster (roster_end)
    delta: tuple[WriterDelta, ...]
    # Per writer, the newest of its entries the sender has collected (for the writers of
    # the digest, of `retired` and of the delta).
    horizon: Mapping[str, Timestamp] = field(default_factory=dict)
    # Retired writers listed one by one: the buckets of the sender's retired set that it
    # knows to differ from the receiver's, whole (R20).
    retired: Mapping[str, Timestamp] = field(default_factory=dict)
    collected: Timestamp = ZERO  # the newest collection the sender has made or taken on (Store.collected)
    bootstrap: bool = False  # the sender is catching up from scratch (R7d)
    more: bool = False  # the delta was cut: there is more to send
    behind: Behind | None = None  # the receiver must reset (R7c)
    retired_sum: RetiredSummary = EMPTY  # the sender's whole retired set, summarised
    lineage: int = 0  # the life whose state the sender's continues (R19); 0: its own
    roster: str | None = None  # (exchange) the roster is asked for, from after this id ("": all)
    roster_end: bool | None = None  # (reply) members is a roster page; True: the last one
    forgotten: Mapping[str, ForgottenLife] = field(default_factory=dict)  # (roster page) lives forgotten
    # (roster page) writers forgotten, with their horizons (R20)
    forgotten_writers: Mapping[str, Timestamp] = field(default_factory=dict)

    @property
    def life_of_state(self) -> int:
        return self.lineage or self.sender.generation


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
    forgotten: Mapping[str, ForgottenLife] = field(default_factory=dict)  # by node id
    generation: int = 0  # the life that saved it (0: unknown, an older snapshot)
    lineage: int = 0  # the life whose state it continues (0: unknown)
    members: tuple[MemberInfo, ...] = ()  # whom that life knew (R18: collection waits for them)
    forgotten_writers: Mapping[str, Timestamp] = field(default_factory=dict)  # their horizons (R20)
