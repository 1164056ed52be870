"""Retired writers and what a peer holds (docs/PROTOCOL.md, R20).

A retired writer is a writer of an ended life that a node no longer lists one by one in
its digest. The digest carries the retired writers as a set instead: a count and a hash
per bucket of writers (XOR of a hash of each `(writer, end)`), so two nodes that retired
the same writers at the same ends send each other a few bytes, and two that differ find
the buckets that differ and list only those. Retiring is therefore an encoding, not a
promise: nothing is assumed of a peer that does not list a writer. What a peer holds of a
writer is read from its summary (`Holdings`), or is unknown until a summary says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar, overload

from gossip.clock import ZERO, Timestamp

_T = TypeVar("_T")
BUCKETS = 16  # buckets of the retired set; a bucket that differs is listed whole


@lru_cache(maxsize=65536)
def bucket_of(writer: str) -> int:
    return hashlib.blake2b(writer.encode(), digest_size=1).digest()[0] % BUCKETS


def item_hash(writer: str, end: Timestamp) -> int:
    data = f"{writer}\x00{end.wall}.{end.counter}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def bucket_hash(items: Mapping[str, Timestamp]) -> int:
    value = 0
    for writer, end in items.items():
        value ^= item_hash(writer, end)
    return value


@dataclass(frozen=True, slots=True)
class RetiredSummary:
    """A node's retired set as its messages carry it: the count and the XOR of every item
    (`root`), and the hash of each bucket when the receiver may need them."""

    count: int = 0
    root: int = 0
    buckets: tuple[int, ...] | None = None

    def bucket(self, index: int) -> int | None:
        """The hash of one bucket, if known (an empty set's buckets are all 0)."""
        if self.buckets is not None:
            return self.buckets[index]
        return 0 if self.count == 0 else None

    def same_set(self, other: RetiredSummary) -> bool:
        return (self.count, self.root) == (other.count, other.root)


EMPTY = RetiredSummary()


class RetiredSet(Mapping[str, Timestamp]):
    """Retired writers and where each ends, with the hash of each bucket kept current."""

    def __init__(self) -> None:
        self._ends: dict[str, Timestamp] = {}
        self._buckets: list[dict[str, Timestamp]] = [{} for _ in range(BUCKETS)]
        self._hashes = [0] * BUCKETS

    def __getitem__(self, writer: str) -> Timestamp:
        return self._ends[writer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ends)

    def __len__(self) -> int:
        return len(self._ends)

    def __contains__(self, writer: object) -> bool:
        return writer in self._ends

    @overload
    def get(self, writer: str, /) -> Timestamp | None: ...
    @overload
    def get(self, writer: str, /, default: Timestamp) -> Timestamp: ...
    @overload
    def get(self, writer: str, /, default: _T) -> Timestamp | _T: ...

    def get(self, writer: str, /, default: object = None) -> object:
        # (Mapping's own get goes through a KeyError for every writer not retired: that
        # is nearly every entry merged, twice each)
        return self._ends.get(writer, default)

    def set(self, writer: str, end: Timestamp) -> None:
        self.discard(writer)
        b = bucket_of(writer)
        self._ends[writer] = self._buckets[b][writer] = end
        self._hashes[b] ^= item_hash(writer, end)

    def discard(self, writer: str) -> Timestamp | None:
        end = self._ends.pop(writer, None)
        if end is not None:
            b = bucket_of(writer)
            del self._buckets[b][writer]
            self._hashes[b] ^= item_hash(writer, end)
        return end

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def hash(self, index: int) -> int:
        return self._hashes[index]

    def bucket(self, index: int) -> Mapping[str, Timestamp]:
        return self._buckets[index]

    def summary(self, with_buckets: bool) -> RetiredSummary:
        root = 0
        for value in self._hashes:
            root ^= value
        buckets = tuple(self._hashes) if with_buckets and self._ends else None
        return RetiredSummary(len(self._ends), root, buckets)

    def differing(self, theirs: RetiredSummary) -> list[int]:
        """The buckets a peer's summary shows to differ from ours (none if it shows no
        buckets and its set is not empty: then which ones is unknown)."""
        if theirs.same_set(self.summary(False)):
            return []
        return [b for b in range(BUCKETS) if (h := theirs.bucket(b)) is not None and h != self._hashes[b]]


EQUAL, LISTED = "equal", "listed"


class Holdings:
    """What a peer holds of each writer, as one of its summaries shows: its digest (the
    writers it lists), and its retired set against ours. A bucket of its retired set is
    known when its hash equals ours (then it holds what we hold there; valid as long as
    our bucket keeps that hash) or when the peer listed that bucket whole (the listed
    items hash to the bucket's hash). `mark(writer)` is its watermark for a writer: ZERO
    if it holds none of it, None if its summary does not tell."""

    __slots__ = ("digest", "listed", "_equal", "_listed_buckets", "_ours")

    def __init__(
        self,
        digest: Mapping[str, Timestamp],
        retired: RetiredSummary,
        listed: Mapping[str, Timestamp],
        ours: RetiredSet,
    ) -> None:
        self.digest = digest
        self.listed = listed
        self._ours = ours
        self._equal: dict[int, int] = {}  # bucket -> our hash when it was found equal
        self._listed_buckets: set[int] = set()
        if retired.same_set(ours.summary(False)):
            self._equal = {b: ours.hash(b) for b in range(BUCKETS)}
            return
        by_bucket: list[dict[str, Timestamp]] = [{} for _ in range(BUCKETS)]
        for writer, end in listed.items():
            by_bucket[bucket_of(writer)][writer] = end
        for b in range(BUCKETS):
            theirs = retired.bucket(b)
            if theirs is None:
                continue
            if theirs == ours.hash(b):
                self._equal[b] = theirs
            elif bucket_hash(by_bucket[b]) == theirs:
                self._listed_buckets.add(b)

    @classmethod
    def guessed(cls, digest: Mapping[str, Timestamp], ours: RetiredSet) -> Holdings:
        """A peer of which we know no summary: its digest guessed, its retired set taken
        to be ours (so nothing retired is sent to it on a guess)."""
        return cls(digest, ours.summary(False), {}, ours)

    @property
    def complete(self) -> bool:
        """Whether every writer's mark is known (no bucket left undecided)."""
        return all(self._known(b) for b in range(BUCKETS))

    def same_bucket(self, b: int) -> bool:
        """Whether the peer's bucket `b` of retired writers is the same as ours now."""
        return self._equal.get(b) == self._ours.hash(b)

    def _known(self, b: int) -> bool:
        return b in self._listed_buckets or self._equal.get(b) == self._ours.hash(b)

    def mark(self, writer: str) -> Timestamp | None:
        if writer in self.digest:
            return self.digest[writer]
        if writer in self.listed:  # (even from a bucket not listed whole: still true)
            return self.listed[writer]
        b = bucket_of(writer)
        if b in self._listed_buckets:
            return ZERO
        if self._equal.get(b) == self._ours.hash(b):
            return self._ours.get(writer, ZERO)
        return None

    def retired_items(self) -> Iterator[tuple[str, Timestamp]]:
        """The peer's retired writers that are known: of the buckets equal to ours, and
        the listed ones."""
        for b in range(BUCKETS):
            if b in self._listed_buckets:
                yield from ((w, e) for w, e in self.listed.items() if bucket_of(w) == b)
            elif self._equal.get(b) == self._ours.hash(b):
                yield from self._ours.bucket(b).items()

    def retired_at(self, writer: str) -> Timestamp | None:
        """Where the peer's retired set ends `writer`, if it has it retired and we know."""
        if writer in self.digest:
            return None
        if writer in self.listed:
            return self.listed[writer]
        if self._equal.get(bucket_of(writer)) == self._ours.hash(bucket_of(writer)):
            return self._ours.get(writer)
        return None
