"""Reference figures the simulator is checked against (docs/DESIGN.md)."""

from __future__ import annotations

import math


def push_rounds(n: int) -> float:
    """Push, fanout 1 (Pittel): log2 N + ln N rounds until all N nodes know."""
    return math.log2(n) + math.log(n)


def push_pull_rounds(n: int) -> float:
    """Push-pull, fanout 1 (Karp et al. 2000): log3 N + ln ln N rounds."""
    return math.log(n, 3) + math.log(math.log(n))


# Monte Carlo of synchronous rounds, rounds to 100%: (N, fanout, loss) -> mode -> (mean, p99).
MONTE_CARLO: dict[tuple[int, int, float], dict[str, tuple[float, int]]] = {
    (10, 3, 0.0): {"push": (3.0, 4), "push-pull": (2.1, 3)},
    (30, 3, 0.0): {"push": (4.3, 6), "push-pull": (3.0, 4)},
    (30, 3, 0.2): {"push": (5.0, 7), "push-pull": (3.2, 4)},
    (100, 3, 0.0): {"push": (5.6, 7), "push-pull": (3.9, 4)},
    (100, 3, 0.5): {"push": (9.3, 13), "push-pull": (5.6, 7)},
    (1000, 1, 0.0): {"push": (18.1, 21), "push-pull": (9.1, 10)},
    (1000, 3, 0.0): {"push": (8.2, 9), "push-pull": (5.0, 6)},
    (1000, 3, 0.5): {"push": (13.3, 15), "push-pull": (7.9, 9)},
}
