"""Reference figures the simulator is checked against: the closed forms, a
reference Monte Carlo table, and a textbook Monte Carlo of synchronous rounds to reproduce that
table under either loss model (no protocol here: a node is a bit, informed or not)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from simulations.network import LossUnit


def push_rounds(n: int) -> float:
    """Push, fanout 1 (Pittel): log2 N + ln N rounds until all N nodes know."""
    return math.log2(n) + math.log(n)


def push_pull_rounds(n: int) -> float:
    """Push-pull, fanout 1 (Karp et al. 2000): log3 N + ln ln N rounds."""
    return math.log(n, 3) + math.log(math.log(n))


# The reference: a Monte Carlo of synchronous rounds, rounds to 100%: (N, fanout, loss) -> mode ->
# (mean, p99). Its loss is per contact (textbook_rounds(loss_unit="exchange") gives it).
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


def textbook_rounds(n: int, fanout: int, loss: float, pull: bool, loss_unit: LossUnit,
                    rng: random.Random) -> int:
    """Rounds until all n nodes are informed, one node informed at the start. Each round
    every node contacts `fanout` others at random; an informed caller informs the callee
    (push) and, with pull, an informed callee informs the caller, both effective at the
    end of the round. Loss per "exchange": a contact fails whole with probability loss.
    Per "message": the request is lost with that probability and, if it arrived, so is
    the answer, so the pull half needs both messages."""
    informed = [False] * n
    informed[0] = True
    count, rounds = 1, 0
    lost: Callable[[], bool] = lambda: loss > 0 and rng.random() < loss  # noqa: E731
    while count < n:
        rounds += 1
        new = []
        for caller in range(n):
            for _ in range(fanout):
                callee = rng.randrange(n - 1)
                callee += callee >= caller
                if lost():
                    continue
                if informed[caller] and not informed[callee]:
                    new.append(callee)
                answer_lost = loss_unit == "message" and lost()
                if pull and informed[callee] and not informed[caller] and not answer_lost:
                    new.append(caller)
        for node in new:
            if not informed[node]:
                informed[node] = True
                count += 1
    return rounds


def textbook(n: int, fanout: int, loss: float, pull: bool, loss_unit: LossUnit,
             trials: int, seed: int | str) -> list[int]:
    """Rounds to 100% over `trials` runs of textbook_rounds, reproducible from the seed."""
    rng = random.Random(f"textbook:{seed}:{n}:{fanout}:{loss}:{pull}:{loss_unit}")
    return [textbook_rounds(n, fanout, loss, pull, loss_unit, rng) for _ in range(trials)]
