"""Part 7, the cost of one `limits` hit: `hit()` on the `gossip://` storage (a real node
running in this process) beside `memory://`, both in the same process, for the fixed window
and the sliding-window counter, called from another thread (a slowapi `def` route, run in
the thread pool) and from the node's own event loop (an `async def` route: the app's loop is
the node's). Every hit is admitted and counted (a limit no test reaches), over 100 keys;
the two storages alternate in short rounds and each figure is that of the fastest round (the
cost when nothing else took the core meanwhile; the machine is shared), so that the
machine's other load falls on both alike. Beside them, `state.admit()` alone.

    python -m benchmarks.limits_hit [--quick]      (alone: seconds; also part of make bench)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.strategies import RateLimiter as Strategy

from benchmarks.report import Section
from benchmarks.system import load_average
from gossip.ratelimit import Rate
from node.state import SharedState
from node.tools.testing import node_in_thread
from node.web.limits_storage import GossipStorage

GOAL_RATIO = 2.0  # gossip:// at most twice memory://
KEYS = [f"client-{i}" for i in range(100)]
STRATEGIES: dict[str, type[Strategy]] = {
    "fixed window": FixedWindowRateLimiter, "sliding-window counter": SlidingWindowCounterRateLimiter,
}
Row = tuple[str, str, float, float]  # strategy, caller, memory us, gossip us


def per_call_us(call: Callable[[str], object], hits: int) -> float:
    keys = KEYS * (hits // len(KEYS))
    started = time.perf_counter()
    for key in keys:
        call(key)
    return (time.perf_counter() - started) / len(keys) * 1e6


def hit_of(strategy: Strategy) -> Callable[[str], object]:
    item = RateLimitItemPerMinute(10**9)
    return lambda key: strategy.hit(item, key)


def fastest_pair(rounds: int, hits: int, memory: Callable[[str], object], gossip: Callable[[str], object],
                run: Callable[[Callable[[], float]], float]) -> tuple[float, float]:
    """The fastest of `rounds` alternating rounds of each, run by `run` (in this thread or the loop's)."""
    pairs = [(run(lambda: per_call_us(memory, hits)), run(lambda: per_call_us(gossip, hits)))
             for _ in range(rounds)]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def measure(quick: bool) -> tuple[list[Row], float]:
    """The rows, and state.admit()'s own cost (us, from another thread)."""
    rounds, hits = (15, 1_000) if quick else (60, 2_000)
    rows: list[Row] = []
    with node_in_thread() as state:
        portal_call = _in_loop(state)
        for name, kind in STRATEGIES.items():
            memory = hit_of(kind(storage_from_string("memory://")))
            gossip = hit_of(kind(GossipStorage(state=state)))
            for caller, run in (("a thread", lambda f: f()), ("the node's loop", portal_call)):
                rows.append((name, caller, *fastest_pair(rounds, hits, memory, gossip, run)))
        rate = Rate(10**9, 60)
        admit = min(per_call_us(lambda key: state.admit(key, rate), hits) for _ in range(rounds))
    return rows, admit


def _in_loop(state: SharedState) -> Callable[[Callable[[], float]], float]:
    """Run a timing function inside the node's event loop (blocking it while it runs, as a
    synchronous storage call in an async route does)."""
    import asyncio

    loop = state._local.wake.loop  # (the loop the node runs in)
    assert loop is not None

    def run(timed: Callable[[], float]) -> float:
        async def inside() -> float:
            return timed()

        return asyncio.run_coroutine_threadsafe(inside(), loop).result()

    return run


def report(rows: list[Row], admit: float) -> list[str]:
    lines = [f"{'strategy':<24} {'called from':<16} {'memory:// us':>12} {'gossip:// us':>12} {'ratio':>6}"]
    lines += [f"{s:<24} {c:<16} {m:>12.2f} {g:>12.2f} {g / m:>6.2f}" for s, c, m, g in rows]
    lines.append(f"state.admit() alone, from a thread: {admit:.2f} us; load average {load_average()}")
    return lines


def run(quick: bool, command: str, out_dir: Path) -> Section:
    rows, admit = measure(quick)
    print("\n".join("  " + line for line in report(rows, admit)), flush=True)
    section = Section(
        "7. The cost of a `limits` hit", command,
        "one process: a node running in a thread of its own and the `gossip://` storage on it, beside "
        "`memory://`; `hit()` of a limit of 10^9 per minute over 100 keys (every hit counted), the two "
        "storages alternating in rounds of "
        f"{'1,000' if quick else '2,000'} hits, the fastest of {'15' if quick else '60'} rounds of each.",
        ["strategy", "called from", "memory:// us per hit", "gossip:// us per hit", "ratio"],
    )
    for strategy, caller, memory, gossip in rows:
        section.rows.append([strategy, caller, f"{memory:.2f}", f"{gossip:.2f}", f"{gossip / memory:.2f}"])
    worst = max(g / m for _, _, m, g in rows)
    section.goals.append((f"`gossip://` at most {GOAL_RATIO:g} times `memory://` per hit: worst {worst:.2f}",
                          worst <= GOAL_RATIO))
    section.notes.append(f"`state.admit()` alone, from a thread: {admit:.2f} us per call.")
    return section


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.limits_hit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    rows, admit = measure(p.parse_args(argv).quick)
    print("\n".join(report(rows, admit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
