"""Fault scenarios written as stories: add nodes, write, cut, heal, crash, wait, check.

A failed check raises ScenarioFailed carrying the seed and the trace, so the run can be
replayed exactly with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.config import Config
from simulations.acks import Ack
from simulations.engine import Simulation
from simulations.network import NetworkModel


class ScenarioFailed(AssertionError):
    def __init__(self, name: str, seed: int, problem: str, trace: list[str]) -> None:
        tail = "\n".join(trace[-60:])
        super().__init__(f"scenario {name!r} failed (seed {seed}): {problem}\ntrace:\n{tail}")
        self.seed = seed


@dataclass
class Report:
    name: str
    seed: int
    nodes: int
    writes: int
    fault_ended_at: float = 0.0
    converged_after: float | None = None  # virtual seconds after the fault ended
    lost_writes: int = 0
    superseded_writes: int = 0
    messages: int = 0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)
    # Named measurements (virtual seconds, counts), summarised over seeds by `--repeat`.
    figures: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        after = "never" if self.converged_after is None else f"{self.converged_after:.2f} s"
        return [
            f"scenario {self.name}  seed {self.seed}  nodes {self.nodes}  writes {self.writes}",
            f"  fault ended at      {self.fault_ended_at:.2f} s (virtual)",
            f"  converged after     {after}",
            f"  acknowledged writes lost: {self.lost_writes}  (superseded by a later write: "
            f"{self.superseded_writes})",
            f"  traffic             {self.messages} messages, {self.bytes} bytes",
            *(f"  {name:<30} {value:g}" for name, value in self.figures.items()),
            *(f"  {note}" for note in self.notes),
        ]


class Story:
    """A scenario's steps, each one logged to the trace."""

    def __init__(self, name: str, seed: int, config: Config, network: NetworkModel) -> None:
        self.name, self.seed = name, seed
        self.sim = Simulation(config, network, seed, trace=True)

    @property
    def ids(self) -> list[str]:
        return list(self.sim.nodes)

    def add_nodes(self, count: int, offsets_ms: Callable[[int], int] = lambda i: 0) -> None:
        first = len(self.sim.nodes)
        for i in range(first, first + count):
            seeds = [] if i == 0 else ["n0"]
            self.sim.add_node(f"n{i}", offset_ms=offsets_ms(i), seeds=seeds)

    def write(self, node_id: str, key: str, value: object) -> None:
        self.sim.write(node_id, key, value)

    def cut(self, name: str, node_ids: list[str]) -> None:
        self.sim.cut(name, node_ids)

    def heal(self, name: str) -> None:
        self.sim.heal(name)

    def crash(self, node_id: str) -> None:
        self.sim.crash(node_id)

    def restart(self, node_id: str, *, keep_state: bool, seeds: list[str] | None = None,
                new_life: bool = False) -> None:
        self.sim.restart(node_id, keep_state=keep_state, seeds=seeds or [], new_life=new_life)

    def wait(self, seconds: float) -> None:
        self.sim.note(f"wait {seconds}s")
        self.sim.run_for(seconds)

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> float:
        """Run until `done()` holds; the virtual seconds it took (fails after `timeout`)."""
        took = self.sim.wait_for(done, timeout, step=0.01)
        if took is None:
            self.fail(f"not within {timeout} virtual seconds: {what}")
        self.sim.note(f"{what} after {took:.3f}s")
        return took  # type: ignore[return-value]

    def wait_converged(self, timeout: float) -> float:
        took = self.sim.wait_for(self.sim.converged, timeout)
        if took is None:
            self.fail(f"no convergence within {timeout} virtual seconds")
        self.sim.note(f"converged after {took:.3f}s")
        return took  # type: ignore[return-value]

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.fail(problem)

    def fail(self, problem: str) -> None:
        raise ScenarioFailed(self.name, self.seed, problem, list(self.sim.trace))

    def report(self, fault_ended_at: float, converged_after: float,
               may_lose: Callable[[Ack], bool] = lambda ack: False) -> Report:
        """The run's figures; fails if an acknowledged write is lost that `may_lose`
        does not allow (the contract's losses, such as a node restarted without its data)."""
        sim = self.sim
        lost = [(node, ack) for node, ack in sim.lost_acks() if not may_lose(ack)]
        self.check(not lost, f"acknowledged writes lost: {lost[:5]}")
        final = {n.id: n.protocol.store for n in sim.up_nodes()}
        store = next(iter(final.values()))
        superseded = sum(
            1 for a in sim.acks
            if (e := store.get(a.key)) is not None and (e.ts, e.origin) != (a.ts, a.origin)
        )
        return Report(
            self.name, self.seed, len(sim.nodes), len(sim.acks), fault_ended_at,
            converged_after, len(lost), superseded, sim.traffic.total_messages,
            sim.traffic.total_bytes,
        )


def _config() -> Config:
    return Config(gossip_interval=1.0, fanout=3)


def partition_heal(seed: int = 1, nodes: int = 10, cut_for: float = 30.0) -> Report:
    """Two halves cut apart for `cut_for` seconds, both sides writing (some to the same
    keys); after the heal every node must agree and no acknowledged write be lost."""
    s = Story("partition-heal", seed, _config(), NetworkModel(latency=0.002, loss=0.01))
    s.add_nodes(nodes)
    s.wait(5)
    s.check(s.sim.converged(), "cluster did not form")
    left, right = s.ids[: nodes // 2], s.ids[nodes // 2 :]
    s.cut("halves", left)
    for second in range(int(cut_for)):
        s.write(left[second % len(left)], f"key{second % 7}", f"left-{second}")
        s.write(right[second % len(right)], f"key{(second + 3) % 11}", f"right-{second}")
        s.wait(1)
    s.heal("halves")
    healed = s.sim.now
    took = s.wait_converged(timeout=120)
    return s.report(healed, took)


def crash_restart(seed: int = 1, nodes: int = 10, down_for: float = 20.0) -> Report:
    """A node crashes, the others keep writing, it comes back empty (new generation,
    knowing one seed) and must catch up with everything."""
    s = Story("crash-restart", seed, _config(), NetworkModel(latency=0.002, loss=0.01))
    s.add_nodes(nodes)
    s.wait(5)
    for i in range(20):
        s.write(s.ids[i % nodes], f"before{i}", i)
    s.wait(5)
    victim = s.ids[-1]
    s.crash(victim)
    for i in range(int(down_for)):
        s.write(s.ids[i % (nodes - 1)], f"during{i % 13}", i)
        s.wait(1)
    s.restart(victim, keep_state=False, seeds=[s.ids[0]])
    back = s.sim.now
    took = s.wait_converged(timeout=120)
    node = s.sim.nodes[victim]
    s.check(len(node.protocol.live(s.sim.node_ms(node))) == 33, "restarted node missed keys")
    report = s.report(back, took)
    report.notes.append(f"restarted node {victim} holds {len(node.protocol.store)} keys")
    return report


def clock_skew(seed: int = 1, nodes: int = 10, skew_ms: int = 4000) -> Report:
    """Clocks spread over +-skew_ms (inside max_offset), concurrent writes to a few
    keys: every node must settle on the same last writer."""
    s = Story("clock-skew", seed, _config(), NetworkModel(latency=0.002, loss=0.01))
    spread = [round(-skew_ms + 2 * skew_ms * i / max(1, nodes - 1)) for i in range(nodes)]
    s.add_nodes(nodes, offsets_ms=lambda i: spread[i])
    s.wait(5)
    for i in range(60):
        s.write(s.ids[(i * 7) % nodes], f"hot{i % 3}", i)
        s.wait(0.05)
    ended = s.sim.now
    took = s.wait_converged(timeout=120)
    report = s.report(ended, took)
    report.notes.append(f"clock offsets from {spread[0]} to {spread[-1]} ms; "
                        f"messages refused: {s.sim.traffic.rejected}")
    return report


FAULTS: dict[str, Callable[..., Report]] = {
    "partition-heal": partition_heal,
    "crash-restart": crash_restart,
    "clock-skew": clock_skew,
}

SCENARIOS = FAULTS  # the lifecycle ones are in simulations.lifecycle.LIFECYCLE
