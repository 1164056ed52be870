"""Synchronous rounds of the real core against the Monte Carlo figures of DESIGN.md
(issue 3, item 2): mean rounds to 100% within 1 round, p99 within 2.

Cases the core does not meet are strict xfails, with the reason; see docs/SIMULATIONS.md.
"""

from __future__ import annotations

import pytest

from simulations.experiments import Setup, run_trials, summarize
from simulations.theory import MONTE_CARLO

# Loss: DESIGN.md's Monte Carlo loses push and pull independently; in a real exchange a
# lost request also loses its answer, and a failed exchange forgets the peer's digest.
PULL_LOSSY = "a lost request also loses the pull half; the reference loses them independently"

CASES = [
    # N, fanout, loss, mode, trials, expected failure
    (10, 3, 0.0, "push-pull", 30, None),
    (30, 3, 0.0, "push-pull", 30, None),
    (30, 3, 0.2, "push-pull", 30, None),
    (100, 3, 0.0, "push-pull", 20, None),
    (100, 3, 0.5, "push-pull", 10, PULL_LOSSY),
    (1000, 3, 0.0, "push-pull", 2, None),
    (10, 3, 0.0, "push", 30, None),
    (30, 3, 0.0, "push", 30, None),
    (30, 3, 0.2, "push", 30, None),  # 5.9 / 8 since the lifecycle core (was 6.12 / 10)
    (100, 3, 0.0, "push", 10, None),  # since unknown peers are guessed from several digests
]


@pytest.mark.parametrize(
    ("nodes", "fanout", "loss", "mode", "trials"),
    [pytest.param(*c[:5], marks=pytest.mark.xfail(reason=c[5], strict=True)) if c[5]
     else pytest.param(*c[:5]) for c in CASES],
    ids=[f"N{c[0]}-k{c[1]}-loss{c[2]:g}-{c[3]}" for c in CASES],
)  # fmt: skip
def test_matches_monte_carlo(nodes: int, fanout: int, loss: float, mode: str, trials: int) -> None:
    setup = Setup(nodes=nodes, fanout=fanout, loss=loss, pull=mode == "push-pull", warmup=2,
                  members_per_message=8)  # fmt: skip
    summary = summarize(setup, run_trials(setup, trials, seed=3))
    mean, _, p99, _ = summary.rounds[1.0]
    ref_mean, ref_p99 = MONTE_CARLO[(nodes, fanout, loss)][mode]
    assert summary.incomplete == 0
    assert abs(mean - ref_mean) <= 1, f"mean {mean:.2f} vs {ref_mean}"
    assert abs(p99 - ref_p99) <= 2, f"p99 {p99} vs {ref_p99}"
