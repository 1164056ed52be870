"""Convergence experiments: one write spreading through N nodes, over many trials."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from gossip.config import Config
from gossip.store import Entry
from simulations.engine import Simulation
from simulations.network import LossUnit, NetworkModel
from simulations.simnode import SimNode
from simulations.timeline import to_us

FRACTIONS = (0.5, 0.99, 1.0)


@dataclass(frozen=True)
class Setup:
    """One point of the parameter grid."""

    nodes: int
    fanout: int = 3
    loss: float = 0.0
    loss_unit: LossUnit = "message"  # or "exchange": see NetworkModel
    interval: float = 1.0
    eager: bool = False
    pull: bool = True  # False: push-only (replies carry no delta)
    synchronous: bool = True  # textbook rounds: no jitter, all nodes in lockstep
    latency: float = 0.001
    latency_tail: float = 0.0005
    warmup: int = 10  # rounds the cluster runs before the write
    max_rounds: int = 200  # give up on a trial after this many rounds
    # Member records per message (Config.view_size). Convergence runs introduce every node
    # up front, so a small sample changes no outcome, only the cost.
    members_per_message: int = 16
    # The failure detector. Off: every member stays alive, as in the textbook model. On, it
    # expects heartbeats as rarely as the view size makes them (R17).
    detector: bool = False
    # Introduce each node to this many random others instead of to all (None): the scale
    # runs, where N^2 member records would not fit in memory.
    introduce: int | None = None

    def config(self) -> Config:
        quiet = {} if self.detector else {"phi_suspect": 1e9, "phi_dead": 1e9}
        return Config(
            gossip_interval=self.interval,
            fanout=self.fanout,
            jitter=0.0 if self.synchronous else Config.jitter,
            eager_push=self.eager,
            view_size=self.members_per_message,
            **quiet,  # type: ignore[arg-type]
        )

    def network(self) -> NetworkModel:
        return NetworkModel(latency=self.latency, latency_tail=self.latency_tail, loss=self.loss,
                            loss_unit=self.loss_unit)

    @property
    def mode(self) -> str:
        return "push-pull" if self.pull else "push"


@dataclass
class Trial:
    """When each node first held the write, and what the cluster sent meanwhile."""

    nodes: int
    interval: float
    synchronous: bool
    seconds: list[float] = field(default_factory=list)  # per node that got it, sorted
    messages: int = 0
    bytes: int = 0
    rounds_run: int = 0
    curve: list[tuple[float, float]] = field(default_factory=list)  # (seconds, fraction)

    def seconds_to(self, fraction: float) -> float:
        need = max(1, math.ceil(fraction * self.nodes - 1e-9))
        return self.seconds[need - 1] if len(self.seconds) >= need else math.inf

    def rounds_to(self, fraction: float) -> float:
        """Synchronous: the round in which the last needed node got it (the write is
        made just before round 1). Otherwise: elapsed time in intervals."""
        seconds = self.seconds_to(fraction)
        if not self.synchronous or math.isinf(seconds):
            return seconds / self.interval
        return math.floor(seconds / self.interval + 1e-9) + (1 if seconds > 0 else 0)

    @property
    def complete(self) -> bool:
        return len(self.seconds) == self.nodes


def run_trial(setup: Setup, seed: int | str, trace: bool = False) -> Trial:
    sim = Simulation(setup.config(), setup.network(), seed, synchronous=setup.synchronous,
                     pull=setup.pull, trace=trace)
    sim.add_nodes(setup.nodes)
    if setup.introduce is None:
        sim.introduce_all()
    else:
        sim.introduce_some(setup.introduce)
    if setup.synchronous:
        sim.start_ticker()
    start = setup.warmup * setup.interval
    writer = random.Random(f"{seed}:writer").choice(list(sim.nodes.values()))
    trial = Trial(setup.nodes, setup.interval, setup.synchronous)
    holders: set[str] = set()
    written: list[Entry] = []
    counted: list[int] = []

    def write() -> None:  # just before the round due at `start`
        counted.extend((sim.traffic.total_messages, sim.traffic.total_bytes))
        written.append(sim.write(writer.id, "k", {"seed": str(seed)}))
        holders.add(writer.id)
        trial.seconds.append(0.0)

    def watch(node: SimNode) -> None:
        if written and node.id not in holders and sim.holds(node, "k", written[0]):
            holders.add(node.id)
            trial.seconds.append(sim.now - start)

    sim.watchers.append(watch)
    sim.at(to_us(start), write, priority=-1)
    for rounds in range(1, setup.max_rounds + 1):
        sim.run_until(start + rounds * setup.interval - 1e-6)
        trial.rounds_run = rounds
        trial.curve.append((sim.now - start, len(holders) / setup.nodes))
        if len(holders) == setup.nodes:
            break
    trial.messages = sim.traffic.total_messages - counted[0]
    trial.bytes = sim.traffic.total_bytes - counted[1]
    return trial


def run_trials(setup: Setup, trials: int, seed: int,
               progress: Callable[[int], None] | None = None, workers: int = 1) -> list[Trial]:
    """`trials` runs, each from its own seed; with workers > 1 spread over as many
    processes (same results, in the same order)."""
    seeds = [f"{seed}:{setup}:{i}" for i in range(trials)]
    if workers <= 1 or trials <= 1:
        runs: Iterator[Trial] = (run_trial(setup, s) for s in seeds)
        return [_counted(t, progress) for t in runs]
    with ProcessPoolExecutor(min(workers, trials)) as pool:
        return [_counted(t, progress) for t in pool.map(partial(run_trial, setup), seeds)]


def _counted(trial: Trial, progress: Callable[[int], None] | None) -> Trial:
    if progress:
        progress(1)
    return trial


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile: the smallest value with at least q of the values at or
    below it (so p99 of 100 trials is the 99th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class Summary:
    setup: Setup
    trials: int
    incomplete: int
    rounds: dict[float, tuple[float, float, float, float]]  # fraction -> mean, median, p99, max
    seconds: dict[float, tuple[float, float, float, float]]
    messages_per_node_round: float
    bytes_per_node_round: float


def summarize(setup: Setup, trials: list[Trial]) -> Summary:
    def stats(values: list[float]) -> tuple[float, float, float, float]:
        return mean(values), quantile(values, 0.5), quantile(values, 0.99), max(values)

    rounds = {f: stats([t.rounds_to(f) for t in trials]) for f in FRACTIONS}
    seconds = {f: stats([t.seconds_to(f) for t in trials]) for f in FRACTIONS}
    node_rounds = sum(t.rounds_run * t.nodes for t in trials)
    return Summary(
        setup, len(trials), sum(not t.complete for t in trials), rounds, seconds,
        sum(t.messages for t in trials) / node_rounds, sum(t.bytes for t in trials) / node_rounds,
    )


__all__ = ["FRACTIONS", "Setup", "Summary", "Trial", "run_trial", "run_trials", "summarize",
           "quantile", "to_us"]
