"""What every member holds: the last summary heard straight from each member's current
life, so that a tombstone is collected only once every member has it (docs/PROTOCOL.md,
R7a).

Hearing from everyone takes a while in a large cluster (each round a node hears from a
few peers), which is fine: collection waits a grace period anyway. A member that is down
keeps its last summary here, so it holds collection back until it is forgotten (R18). A
member whose summary does not tell how far it holds a writer (a bucket of its retired set
that differs from ours and that it did not list) counts as holding none of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gossip.clock import ZERO, Timestamp
from gossip.membership import MemberInfo
from gossip.retired import Holdings


@dataclass(frozen=True, slots=True)
class Heard:
    generation: int  # the member's life this summary came from
    holdings: Holdings
    collected: Timestamp  # the newest collection it knew of


class Stability:
    def __init__(self) -> None:
        self._heard: dict[str, Heard] = {}

    def hear(self, member: MemberInfo, holdings: Holdings, collected: Timestamp) -> None:
        known = self._heard.get(member.id)
        if known is None or member.generation >= known.generation:
            self._heard[member.id] = Heard(member.generation, holdings, collected)

    def all_past(self, members: Iterable[MemberInfo], writer: str, end: Timestamp) -> bool:
        """Whether every one of `members` holds `writer` up to `end`, or has forgotten it
        with all of it behind it (holds none of it and knows collections that recent),
        by the summaries heard from their current lives: then no member can still bring
        us part of its history (R20)."""
        for member in members:
            heard = self._heard.get(member.id)
            if heard is None or heard.generation != member.generation:
                return False
            mark = heard.holdings.mark(writer)
            if mark is None or (mark < end and not (mark == ZERO and heard.collected >= end)):
                return False
        return True

    def collected(self, member_id: str) -> Timestamp:
        """The newest collection a member knew of, as it last told us (ZERO if never)."""
        heard = self._heard.get(member_id)
        return ZERO if heard is None else heard.collected

    def forget(self, member_id: str) -> None:
        self._heard.pop(member_id, None)

    def clear(self) -> None:
        self._heard.clear()

    def coverage(self, members: Iterable[MemberInfo], writer: str) -> Timestamp:
        """Up to where every one of `members` holds `writer`'s history, by the summaries
        heard from their current lives (ZERO if one has not been heard from, or its
        summary does not tell)."""
        low: Timestamp | None = None
        for member in members:
            heard = self._heard.get(member.id)
            if heard is None or heard.generation != member.generation:
                return ZERO
            mark = heard.holdings.mark(writer)
            if mark is None or mark == ZERO:
                return ZERO
            if low is None or mark < low:
                low = mark
        return ZERO if low is None else low
