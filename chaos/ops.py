"""One operation a chaos client made, with its outcome: the unit of a run's history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from gossip.store import JSON

Kind = Literal["write", "delete", "read"]
Outcome = Literal["ok", "fail", "unknown"]
Stamp = tuple[int, int]  # an entry's hybrid timestamp, [wall_ms, counter]
KINDS: tuple[str, ...] = get_args(Kind)
OUTCOMES: tuple[str, ...] = get_args(Outcome)


@dataclass(frozen=True)
class Op:
    kind: Kind
    key: str
    value: JSON | None  # write: the value sent; read: the value returned (None for 404); delete: None
    node: str  # the node the client sent it to
    start: float  # seconds since the run began, on the client's monotonic clock
    end: float  # when the answer, or the give-up, came
    outcome: Outcome  # ok: acknowledged; fail: refused, nothing written; unknown: may or may not have been
    ts: Stamp | None = None  # acknowledged write or delete: the entry's timestamp
    writer: str | None = None  # acknowledged write or delete: the node id in the answer

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"bad op, {problem}: {self}")

    def _problem(self) -> str:
        if self.kind not in KINDS:
            return f"kind must be one of {', '.join(KINDS)}"
        if self.outcome not in OUTCOMES:
            return f"outcome must be one of {', '.join(OUTCOMES)}"
        if not self.start <= self.end:
            return "it ends before it starts"
        if self.kind == "write" and self.value is None:
            return "a write of null reads like an absent key; write a non-null value"
        if self.kind == "delete" and self.value is not None:
            return "a delete carries no value"
        if self.ts is not None and not (
            isinstance(self.ts, tuple) and len(self.ts) == 2 and all(type(part) is int for part in self.ts)
        ):
            return "ts must be a (wall_ms, counter) tuple of two integers"
        if self.kind != "read" and self.outcome == "ok" and (self.ts is None or self.writer is None):
            return "an acknowledged write or delete needs the answer's ts and writer"
        return ""
