"""The core against theory: synchronous rounds, no jitter, eager push
off; mean rounds to 100% within 1 round of the reference and p99 within 2.

Loss per "exchange" (a contact fails whole) is the model of the reference Monte Carlo
table (`theory.MONTE_CARLO`), the reference for that model. Loss per "message" (request
and reply lost on their own, so a pull needs both) has no table: the textbook Monte Carlo
of the same model is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulations.experiments import Setup, mean, quantile, run_trials, summarize
from simulations.network import LossUnit
from simulations.theory import MONTE_CARLO, textbook

MEAN_BAND = 1.0
P99_BAND = 2
TEXTBOOK_TRIALS = 400


@dataclass(frozen=True)
class Case:
    nodes: int
    fanout: int
    loss: float
    mode: str  # "push" or "push-pull"
    loss_unit: LossUnit = "exchange"

    @property
    def label(self) -> str:
        unit = f"-per-{self.loss_unit}" if self.loss else ""
        return f"N{self.nodes}-k{self.fanout}-loss{self.loss:g}{unit}-{self.mode}"

    def setup(self) -> Setup:
        return Setup(nodes=self.nodes, fanout=self.fanout, loss=self.loss, loss_unit=self.loss_unit,
                     pull=self.mode == "push-pull", warmup=2, members_per_message=8)

    def reference(self, seed: int) -> tuple[float, float, str]:
        """(mean, p99, where from)."""
        if self.loss_unit == "exchange" or self.loss == 0:
            ref_mean, ref_p99 = MONTE_CARLO[(self.nodes, self.fanout, self.loss)][self.mode]
            return ref_mean, ref_p99, "reference"
        rounds = textbook(self.nodes, self.fanout, self.loss, self.mode == "push-pull",
                          self.loss_unit, TEXTBOOK_TRIALS, seed)
        return mean(rounds), quantile(rounds, 0.99), "textbook"


# Every row of the reference table, and the lossy rows again with loss per message.
CASES = [Case(n, k, loss, mode) for (n, k, loss), modes in MONTE_CARLO.items() for mode in modes] + [
    Case(n, k, loss, mode, "message")
    for (n, k, loss), modes in MONTE_CARLO.items() if loss for mode in modes
]


@dataclass(frozen=True)
class Agreement:
    case: Case
    trials: int
    incomplete: int
    mean: float
    p99: float
    ref_mean: float
    ref_p99: float
    source: str

    @property
    def within(self) -> bool:
        return (self.incomplete == 0 and abs(self.mean - self.ref_mean) <= MEAN_BAND
                and abs(self.p99 - self.ref_p99) <= P99_BAND)


def check(case: Case, trials: int, seed: int, workers: int = 1) -> Agreement:
    setup = case.setup()
    summary = summarize(setup, run_trials(setup, trials, seed, workers=workers))
    got_mean, _, got_p99, _ = summary.rounds[1.0]
    ref_mean, ref_p99, source = case.reference(seed)
    return Agreement(case, trials, summary.incomplete, got_mean, got_p99, ref_mean, ref_p99, source)
