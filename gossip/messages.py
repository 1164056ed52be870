"""The messages nodes exchange. Frozen dataclasses; bytes are the codec's business."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gossip.clock import Timestamp
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


@dataclass(frozen=True, slots=True)
class Exchange:
    """A round's request: our digest and view, and what the peer was known to lack."""

    sender: MemberInfo
    digest: Mapping[str, Timestamp]
    members: tuple[MemberInfo, ...]
    delta: tuple[WriterDelta, ...]
    # You are behind my tombstone collection: drop your state and catch up afresh.
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to an Exchange: what the requester lacks by its digest, and ours."""

    sender: MemberInfo
    digest: Mapping[str, Timestamp]
    members: tuple[MemberInfo, ...]
    delta: tuple[WriterDelta, ...]
    # You are behind my tombstone collection: drop your state and catch up afresh.
    reset: bool = False


@dataclass(frozen=True, slots=True)
class RumorItem:
    """A fresh write and its writer's previous write's ts, so a receiver that held
    everything up to prev may move its watermark for that writer to entry.ts."""

    entry: Entry
    prev: Timestamp


@dataclass(frozen=True, slots=True)
class Rumor:
    """Eagerly pushed writes. The receiver passes them on to the peers in `cover`,
    which it splits among `fanout` of them in turn, so one push reaches each member
    once, along a random tree of depth about log_fanout N."""

    sender: MemberInfo
    items: tuple[RumorItem, ...]
    cover: tuple[str, ...] = ()  # addresses the receiver is to pass the items on to


Message = Exchange | Reply | Rumor


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a node needs to restart with its state: what `--data-dir` keeps."""

    clock: Timestamp  # the highest timestamp issued or seen: new writes start above it
    watermarks: Mapping[str, Timestamp]
    horizon: Mapping[str, Timestamp]
    entries: tuple[Entry, ...]
    last_contact: int | None = None  # wall ms of the last completed exchange
