"""What a node remembers of what it forgot, to judge by later (members, lives and writers
forgotten, R7c, R18, R20): the newest MAX_FORGOTTEN of each kind, however long ago."""

from __future__ import annotations

from typing import TypeVar

# Beyond this many, the oldest is let go (a life away for longer is judged afresh, and a
# snapshot older than that many forgettings by other evidence alone).
MAX_FORGOTTEN = 4096

K = TypeVar("K")
V = TypeVar("V")


def remember_newest(records: dict[K, V], key: K, value: V) -> None:
    """Record `key` as the newest of `records`, letting the oldest go past MAX_FORGOTTEN."""
    records.pop(key, None)
    records[key] = value
    while len(records) > MAX_FORGOTTEN:
        del records[next(iter(records))]
