"""Rate limits over windowed counters: the rule, parsed from text like "100/minute", and the
decision for one request given the windows' totals as this node sees them (pure, so that
the node and the simulator decide alike).

The estimate is the sliding-window approximation: the previous window's total, weighted by
the part of it still inside the last `period`, plus the current window's. It is as exact as
the totals are fresh: other nodes' admissions reach this node after the propagation delay,
so a fleet-wide limit is exceeded by about the admissions made during that delay.

Resets (for the `limits` storage, node/web/limits_storage.py): a limit is reset fleet-wide by a
marker entry, merged like any other (last writer wins), and hits count under a name that
carries the newest marker's timestamp, its *epoch* (`epoch_name`): after a reset, hits go
to a fresh counter, and hits counted before it, wherever they arrive and in whatever order,
stay in the old one, which nobody reads any more and which expires with its windows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from gossip.counters import Counting, WindowCount, period_ms
from gossip.errors import InvalidValue
from gossip.namespaces import RESERVED
from gossip.store import Entry

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*(second|minute|hour|day)s?\s*$",
                   re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    limit: int  # requests admitted per period (in counted units)
    period: float  # seconds
    # If set, the counted units of one whole request, and the estimate is rounded down to
    # whole requests before it is compared (the rule of the `limits` package, whose storage
    # counts in thousandths of a request so that fractional costs count as they are).
    whole: int = 0

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


def parse_rate(text: str) -> Rate:
    """'100/minute', '500/10 seconds', '5 per second', '1000/day': a Rate."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidValue(
            f"rate {text!r} is not understood: write '<count>/<period>', the period one of "
            "second, minute, hour, day, optionally with a number ('500/10 seconds')"
        )
    limit, multiple, unit = int(match[1]), float(match[2] or 1), match[3].lower()
    if limit < 1 or multiple <= 0:
        raise InvalidValue(f"rate {text!r}: the count and the period must be positive")
    return Rate(limit, multiple * UNITS[unit])


class Decision(NamedTuple):  # (built on every rate-limited request: a named tuple is cheapest)
    allowed: bool
    remaining: int  # requests still admitted now, by the estimate
    reset: int  # seconds until the estimate has room for one more request again (>= 1 if refused)


def decide(rate: Rate, seen: WindowCount, cost: int = 1) -> Decision:
    """Whether a request of `cost` fits `rate`, given the windows' totals before it. A
    cost above the limit never fits (refused, told to retry when the window ends)."""
    if cost > rate.limit:
        return Decision(False, 0, max(1, _seconds(seen.resets_in_ms)))
    estimate = _whole_estimate(seen, rate.whole) if rate.whole else seen.sliding
    if estimate + cost <= rate.limit:
        return Decision(True, max(0, math.floor(rate.limit - estimate - cost)), _seconds(seen.resets_in_ms))
    return Decision(False, 0, max(1, _seconds(_wait_ms(rate, seen, cost))))


def admit(counting: Counting, name: str, rate: Rate, cost: int, now_ms: int, defer: bool = False) -> Decision:
    """Decide on one request against the windowed counter `name`, and count it if admitted
    (`defer`: see Counting.add_in_window)."""
    length = period_ms(rate.period)
    decision = decide(rate, counting.window(name, length, now_ms), cost)
    if decision.allowed:
        counting.add_in_window(name, length, cost, now_ms, defer)
    return decision


def _whole_estimate(seen: WindowCount, whole: int) -> int:
    """The sliding estimate rounded down to whole requests of `whole` units, in exact
    integer arithmetic (so that a count right on a boundary is not lost to a float)."""
    length, left = seen.length_ms, seen.length_ms - seen.elapsed_ms
    return (seen.previous * left + seen.current * length) // (length * whole) * whole


def _wait_ms(rate: Rate, seen: WindowCount, cost: int) -> float:
    """How long until the estimate drops to admit `cost` more, if nothing else is counted."""
    length = seen.length_ms
    room = rate.limit - cost - seen.current
    if room >= 0 and seen.previous > 0:  # the previous window's weight fades within this one
        return max(0.0, length * (1 - room / seen.previous) - seen.elapsed_ms)
    # Wait for the next window, where the current one is the previous, fading.
    after = seen.resets_in_ms
    room_next = rate.limit - cost
    if seen.current <= room_next:
        return after
    return after + length * (1 - room_next / seen.current)


def _seconds(ms: float) -> int:
    return math.ceil(ms / 1000)


# -- resets -------------------------------------------------------------------------------

RESET = RESERVED + "ratelimit/reset"  # a reset of every limit counted by epochs
CLEAR = RESERVED + "ratelimit/clear/"  # + <name>: a reset of that one limit


def epoch_name(name: str, read: Callable[[str], Entry | None]) -> str:
    """The counter that holds the hits of limit `name` since its newest reset (`read`
    gives the live entry of a key): `name` itself if never reset, else `name@<wall>.<n>`,
    the newest marker's timestamp."""
    reset, clear = read(RESET), read(CLEAR + name)
    newest = reset if clear is None or (reset is not None and reset.stamp > clear.stamp) else clear
    return name if newest is None else f"{name}@{newest.wall}.{newest.counter}"


def clear_ttl(length_ms: int) -> float:
    """How long a marker clearing one limit of windows of `length_ms` must live (s): until
    every window holding hits counted before it has expired (the window of the reset and
    the one after it, where a node that had not heard of it yet may still have counted
    under the old name), so that those never count again."""
    return 3 * length_ms / 1000
