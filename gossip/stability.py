"""What every member holds: the last digest heard straight from each member's current
life, so that a tombstone is collected only once every member has it, and a writer that
has ended is retired only once every member holds all of it (docs/PROTOCOL.md, R7a, R20).

Hearing from everyone takes a while in a large cluster (each round a node hears from a
few peers), which is fine: collection waits a grace period anyway. A member that is down
keeps its last digest here, so it holds collection back until it is forgotten (reaped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gossip.clock import ZERO, Timestamp
from gossip.membership import MemberInfo


@dataclass(frozen=True, slots=True)
class Heard:
    generation: int  # the member's life this digest came from
    digest: Mapping[str, Timestamp]
    retired: Mapping[str, Timestamp]  # writers it had retired (only those it still announced)

    def covers(self, writer: str) -> Timestamp:
        return self.digest.get(writer) or self.retired.get(writer, ZERO)


class Stability:
    def __init__(self) -> None:
        self._heard: dict[str, Heard] = {}

    def hear(self, member: MemberInfo, digest: Mapping[str, Timestamp],
             retired: Mapping[str, Timestamp]) -> None:  # fmt: skip
        known = self._heard.get(member.id)
        if known is None or member.generation >= known.generation:
            self._heard[member.id] = Heard(member.generation, digest, retired)

    def forget(self, member_id: str) -> None:
        self._heard.pop(member_id, None)

    def clear(self) -> None:
        self._heard.clear()

    def _current(self, member: MemberInfo) -> Heard | None:
        heard = self._heard.get(member.id)
        return heard if heard is not None and heard.generation == member.generation else None

    def coverage(self, members: Iterable[MemberInfo], writer: str) -> Timestamp:
        """Up to where every one of `members` holds `writer`'s history, by the digests
        heard from their current lives (ZERO if one has not been heard from)."""
        low: Timestamp | None = None
        for member in members:
            heard = self._current(member)
            if heard is None:
                return ZERO
            mark = heard.covers(writer)
            if low is None or mark < low:
                low = mark
        return ZERO if low is None else low

    def all_hold(self, members: Iterable[MemberInfo], writer: str, upto: Timestamp) -> bool:
        """Whether each of `members` holds `writer` exactly up to `upto` (or has retired
        it there), so that no member holds more of it than we do, nor less."""
        for member in members:
            heard = self._current(member)
            if heard is None or heard.digest.get(writer, heard.retired.get(writer)) != upto:
                return False
        return True

    def listed_by_any(self, writer: str) -> bool:
        """Whether some member's last digest still lists `writer`."""
        return any(writer in heard.digest for heard in self._heard.values())
