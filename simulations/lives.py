"""Node lives that end, restart and come back: seven cases in which a fault search found
the rules about lives (forgetting members R18, retiring ended writers R20, a restored
node's resync R19, a newcomer's catch-up R7d) breaking docs/PROTOCOL.md's contract,
"What can be lost, and when". Each is a story in virtual time with the settings it
needs (short rounds, grace and reap periods, small clusters), so that each runs in
about a second of CPU.

A story checks only what can be seen from outside the core: what a node reads, how
often it was reset, whether it is still catching up, which messages were refused, and
whether the nodes agree. It raises ScenarioFailed (seed, trace) saying in words all that
went wrong, or returns a Report. `python -m simulations.lives [NAME ...]` runs them.

The stories are in simulations/lives_forgotten.py (members forgotten and reset) and
simulations/lives_retired.py (ended writers retired); what they share, in
simulations/lives_watch.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from simulations.lives_forgotten import away_twice_reap, majority_node_reset_after_heal, reset_pair_cold_start
from simulations.lives_retired import (
    endless_catch_up,
    restored_pair,
    retired_on_one_word,
    wedged_past_writer_cap,
)
from simulations.scenarios import Report, ScenarioFailed

# Each at the seed it is told at (its defaults).
LIVES: dict[str, Callable[..., Report]] = {
    "majority-node-reset-after-heal": majority_node_reset_after_heal,
    "endless-catch-up": endless_catch_up,
    "retired-on-one-word": retired_on_one_word,
    "restored-pair": restored_pair,
    "wedged-past-writer-cap": wedged_past_writer_cap,
    "away-twice-reap": away_twice_reap,
    "reset-pair-cold-start": reset_pair_cold_start,
}


def main(argv: list[str] | None = None) -> int:
    """Run the stories named (default: all) and print each report, or what went wrong."""
    names = (sys.argv[1:] if argv is None else argv) or list(LIVES)
    unknown = [n for n in names if n not in LIVES]
    if unknown:
        print(f"unknown {unknown}; choose from {', '.join(LIVES)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            print("\n".join(LIVES[name]().lines()))
        except ScenarioFailed as exc:
            failed += 1
            print(str(exc).split("\ntrace:")[0])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
