"""An entry: one version of a key, as a node holds it, sends it and merges it by
last-writer-wins (docs/PROTOCOL.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gossip.clock import Timestamp
from gossip.jsontext import canonical

JSON = Any  # any JSON value

WRITER_SEP = "#"
_new_tuple = tuple.__new__  # in a writer id: "<node id>#<generation>"


@dataclass(slots=True, init=False, repr=False, unsafe_hash=True)
class Entry:
    """One version of a key; immutable: its fields are Final, so the type checker refuses
    any assignment outside __init__ (a frozen dataclass enforces it at run time, but costs
    five times as much to build, each field set through object.__setattr__: a node builds
    one per entry it receives). A node holds one per key, so it is kept small:
    the timestamp as its two numbers rather than a Timestamp (a tuple, 56 bytes more per
    entry), which `ts` builds when asked; `stamp` is the same as a plain tuple, cheaper, for
    the comparisons on the hot paths. Built with a timestamp, shown with it."""

    key: Final[str]
    value: Final[JSON]  # None for a tombstone
    wall: Final[int]  # the timestamp: Timestamp(wall, counter)
    counter: Final[int]
    origin: Final[str]  # the writer: "<node id>#<generation>", one per life of a node
    deleted: Final[bool]
    expires_at: Final[int | None]  # wall ms; the entry reads as absent from then on

    def __init__(self, key: str, value: JSON, ts: tuple[int, int], origin: str, deleted: bool = False,
                 expires_at: int | None = None) -> None:
        """`ts`: a Timestamp, or the same as a plain tuple."""
        self.key = key
        self.value = value
        self.wall, self.counter = ts
        self.origin = origin
        self.deleted = deleted
        self.expires_at = expires_at

    @property
    def ts(self) -> Timestamp:
        return _new_tuple(Timestamp, (self.wall, self.counter))  # (Timestamp(), less its Python frame)

    @property
    def stamp(self) -> tuple[int, int]:
        """The timestamp as a plain tuple: it compares as the Timestamp does, and costs less."""
        return (self.wall, self.counter)

    @property
    def node(self) -> str:
        """The id of the node that wrote it."""
        return self.origin.rpartition(WRITER_SEP)[0] or self.origin

    @property
    def mortal_at(self) -> int | None:
        """Wall ms after which, plus the grace period, the entry may be collected:
        tombstones and entries with an expiry; None for the others."""
        if self.deleted:
            return self.wall
        if self.expires_at is not None:
            return max(self.wall, self.expires_at)
        return None

    def wins_over(self, other: Entry) -> bool:
        """The LWW order: (ts, origin), then a fixed tie-break on content, so that even
        two different entries with equal (ts, origin) merge the same way everywhere."""
        mine, theirs = (self.wall, self.counter, self.origin), (other.wall, other.counter, other.origin)
        if mine != theirs:
            return mine > theirs
        return _content(self) > _content(other)

    def is_live(self, now_ms: int) -> bool:
        return not self.deleted and (self.expires_at is None or now_ms < self.expires_at)

    def __repr__(self) -> str:
        return (f"Entry(key={self.key!r}, value={self.value!r}, ts={self.ts!r}, origin={self.origin!r}, "
                f"deleted={self.deleted!r}, expires_at={self.expires_at!r})")


def _content(entry: Entry) -> tuple[bool, str, int]:
    value = canonical(entry.value).decode()
    return (entry.deleted, value, -1 if entry.expires_at is None else entry.expires_at)
