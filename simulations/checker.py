"""A randomized checker of the core under faults, in virtual time.

Each seed draws a schedule (simulations/check_schedule.py: a cluster, a stream of
writes and deletes, and faults of the network, of processes, of clocks and of whole
lives), which is played against a simulation. Then it heals everything and checks
what docs/PROTOCOL.md promises:

- every live node agrees, within a bounded time (nodes that joined under new ids too);
- each key reads as the last-writer-wins maximum of the acknowledged operations on it,
  except operations the contract lets go (those only a discarded state held: a node
  restarted without its data, or from a snapshot older than the operation, recycled away,
  or reset). A write taken by a node whose clock was off, even beyond `max_offset`, is
  not excused;
- no node ever reads an older entry for a key after holding a newer one (so no deleted
  key comes back), within one life of that node;
- no life of a node is reset unless some node forgot that life or it started from a
  snapshot (not for a skewed clock, a pause, a cut, an empty restart or a neighbour's
  restore);
- nothing raises but a peer's error.

A failing schedule shrinks (steps are removed while the same kind of violation stays;
each step stands alone, so a start without its end still runs) and prints as JSON,
which `gossip-sim check --replay FILE` runs again.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.config import Config
from simulations.check_ledger import Ledger, Violation
from simulations.check_schedule import MAX_DURATION, Schedule, generate
from simulations.check_steps import StepPlayer
from simulations.check_verdict import judge_reads, judge_resets
from simulations.engine import Simulation
from simulations.network import NetworkModel
from simulations.timeline import to_us

SAVE_EVERY = 1.0  # virtual seconds between data-dir snapshots, as node/ does
SETTLE = 2.0  # virtual seconds the agreement must hold


@dataclass
class Outcome:
    schedule: Schedule
    violations: list[Violation] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


class Run:
    """One schedule played against a simulation (simulations/check_steps.py), with the
    ledger of what the contract lets it lose (simulations/check_ledger.py); then the
    heal, the wait for agreement, and the verdict (simulations/check_verdict.py)."""

    def __init__(self, schedule: Schedule, trace: bool = False) -> None:
        self.schedule = schedule
        config = Config(**schedule.config)
        self.sim = Simulation(config, NetworkModel(**schedule.network), schedule.seed, trace=trace)
        self.ledger = Ledger(self.sim)
        self.player = StepPlayer(self.sim, self.ledger)
        self.figures: dict[str, float] = {}
        self.sim.watchers.append(self.ledger.watch)

    def run(self) -> None:
        s, sim = self.schedule, self.sim
        for i in range(s.nodes):
            sim.add_node(f"n{i}", seeds=[] if i == 0 else ["n0"])
        for step in s.steps:
            sim.at(to_us(step.at), lambda step=step: self.player.apply(step))  # type: ignore[misc]
        sim.at(to_us(SAVE_EVERY), self._save_all)
        sim.run_until(s.heal_at)
        self.player.heal()
        agreed = self.agree(s.agree_within)
        self.figures_at_end(agreed)
        if agreed is None:
            hashes = {n.id: n.protocol.state_hash(sim.node_ms(n))[0][:8] for n in sim.up_nodes()}
            self.ledger.violate("no agreement", f"within {s.agree_within} s of the heal: {hashes}")
            return
        judge_reads(self.ledger)
        judge_resets(self.ledger)

    def _save_all(self) -> None:
        """Every node's data directory saves, every SAVE_EVERY seconds, as node/ does."""
        self.player.save_all(keep=int(MAX_DURATION / SAVE_EVERY))
        self.sim.after(SAVE_EVERY, self._save_all)

    def agree(self, within: float) -> float | None:
        """Virtual seconds until every node up agrees, and does for SETTLE seconds more;
        None if not `within` seconds."""
        sim = self.sim
        start = sim.now
        while sim.now - start < within:
            if sim.converged():
                sim.run_for(SETTLE)
                if sim.converged():
                    return sim.now - start - SETTLE
            sim.run_for(0.5)
        return None

    def figures_at_end(self, agreed: float | None) -> None:
        nodes, ledger = self.sim.nodes.values(), self.ledger
        self.figures = {
            "ops": len(ledger.ops), "losable": len(ledger.losable),
            "resets": sum(n.protocol.stats.resets for n in nodes),
            "collected": sum(n.protocol.stats.collected for n in nodes),
            "retired": sum(n.protocol.stats.retired for n in nodes),
            "forgotten lives": len(ledger.reaped), "restarts": len(ledger.lives),
            "restores": len(ledger.restored),
            "skewed starts": sum(1 for _, _, offset in ledger.lives if offset),
            "nodes (max)": len(self.sim.nodes),
            "agreed after s": -1.0 if agreed is None else round(agreed, 3),
            "digest writers (max)": max(len(n.protocol.store.watermarks) for n in nodes),
        }


def run(schedule: Schedule, trace: bool = False) -> Outcome:
    r = Run(schedule, trace=trace)
    try:
        r.run()
    except Exception as exc:  # anything but a peer's error (the engine catches those) is a bug
        r.ledger.violate("exception", "".join(traceback.format_exception_only(exc)).strip())
        r.sim.note(traceback.format_exc())
    return Outcome(schedule, r.ledger.violations, r.figures, list(r.sim.trace))


def check(seed: int) -> Outcome:
    return run(generate(seed))


# -- shrinking ------------------------------------------------------------------------------


def shrink(
    outcome: Outcome,
    budget: int = 300,
    progress: Callable[[int, int], None] | None = None,
    kind: str | None = None,
) -> Outcome:
    """Remove steps while a violation of the same kind (`kind`, or the first one's)
    remains (delta debugging: halves, then quarters, ... then single steps)."""
    kind = kind or outcome.violations[0].kind
    best = outcome
    runs = 0
    chunk = max(1, len(best.schedule.steps) // 2)
    while chunk >= 1 and runs < budget:
        i, shrunk = 0, False
        while i < len(best.schedule.steps) and runs < budget:
            candidate = best.schedule.without(set(range(i, i + chunk)))
            runs += 1
            result = run(candidate)
            if any(v.kind == kind for v in result.violations):
                best, shrunk = result, True
                if progress is not None:
                    progress(runs, len(best.schedule.steps))
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return best
