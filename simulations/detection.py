"""How fast direct probes (R23) see a crash, and what they get wrong, as the cluster grows.

Three runs per size, each from a cluster that has found itself (every node introduced to
every other), interval 1 s:

- **crash**: after a quiet warm-up one node crashes; the time until each other node marks
  it dead (median and p99 over the observers), the live members marked suspect or dead
  meanwhile, the bytes of a probe message and the probe traffic per node.
- **lossy**: 10 % of messages lost and one member paused for 1 s every minute (its
  process stopped: nothing it is sent arrives meanwhile), over `minutes`: live members
  marked dead, by anyone.
- **overloaded**: one member whose every handler runs 300 ms late, over `minutes`: the
  times it was marked suspect or dead.

With `rounds=False` the nodes run their probes alone, without gossip rounds, and phi is
off (it would see no heartbeats): every mark is the probes'. That is how sizes too large
to gossip in full in the simulator are run; the probes' own traffic does not depend on
the rounds.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

from gossip.config import Config
from gossip.membership import DEAD, SUSPECT
from gossip.suspicion import suspicion_bounds_ms
from simulations.engine import Simulation
from simulations.network import NetworkModel
from simulations.roster import introduce_all_shared
from simulations.simnode import SimNode

WARM_UP = 10.0  # seconds before the crash
CRASH_TIMEOUT = 60.0  # seconds to wait for every observer to mark the crash dead
STEP = 0.05  # seconds between looks at the observers


def detect_config(rounds: bool = True) -> Config:
    config = Config(gossip_interval=1.0, probe_interval=1.0)
    if not rounds:
        config = config.replace(phi_suspect=1e9, phi_dead=1e9)
    return config


@dataclass
class Marks:
    """Live members marked suspect or dead, by anyone (each mark by each observer)."""

    suspect: int = 0
    dead: int = 0

    def take(self, sim: Simulation, exclude: str = "") -> None:
        """Drain the nodes' membership events (often: each node keeps its last 256),
        counting marks of every member but `exclude` (a paused member counts: it lives)."""
        for node in sim.nodes.values():
            events = node.protocol.membership.events
            while events:
                event = events.popleft()
                if event.member == exclude:
                    continue
                if event.kind == SUSPECT:
                    self.suspect += 1
                elif event.kind == DEAD:
                    self.dead += 1


@dataclass
class CrashRun:
    nodes: int
    rounds: bool
    detection: list[float] = field(default_factory=list)  # seconds, per observer
    undetected: int = 0
    marks: Marks = field(default_factory=Marks)
    probe_bytes: float = 0.0  # mean bytes of a probe message
    probe_max: int = 0
    probes_per_node_s: float = 0.0  # probe messages a node sends per second
    probe_bytes_per_node_s: float = 0.0
    wall: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.detection) if self.detection else math.nan

    @property
    def p99(self) -> float:
        if not self.detection:
            return math.nan
        ordered = sorted(self.detection)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _cluster(nodes: int, seed: int, name: str, rounds: bool, loss: float = 0.0) -> Simulation:
    network = NetworkModel(latency=0.002, latency_tail=0.001, loss=loss)
    sim = Simulation(detect_config(rounds), network, f"{seed}:detect:{name}:{nodes}", rounds=rounds)
    sim.add_nodes(nodes)
    if rounds:
        sim.introduce_all()
    else:  # probes alone read few records: make only those (N = 10,000 would need 10^8)
        introduce_all_shared(sim)
    return sim


def crash_run(nodes: int, seed: int = 1, rounds: bool = True) -> CrashRun:
    started = time.monotonic()
    sim = _cluster(nodes, seed, "crash", rounds)
    run = CrashRun(nodes, rounds)
    sim.run_for(WARM_UP)
    run.marks.take(sim)
    sent = sim.traffic.messages["probe"]
    run.probes_per_node_s = sent / nodes / WARM_UP
    run.probe_bytes_per_node_s = sim.traffic.bytes["probe"] / nodes / WARM_UP
    victim = f"n{nodes // 2}"
    sim.crash(victim)
    crashed = sim.now
    waiting = {n.id for n in sim.up_nodes()}
    while waiting and sim.now - crashed < CRASH_TIMEOUT:
        sim.run_for(STEP)
        run.marks.take(sim, exclude=victim)
        for node_id in list(waiting):
            if sim.status(node_id, victim) == DEAD:
                waiting.discard(node_id)
                run.detection.append(round(sim.now - crashed, 3))
    run.undetected = len(waiting)
    run.marks.take(sim, exclude=victim)
    probes = sim.traffic.messages["probe"]
    run.probe_bytes = sim.traffic.bytes["probe"] / probes if probes else 0.0
    run.probe_max = sim.traffic.largest["probe"]
    run.wall = time.monotonic() - started
    return run


@dataclass
class FaultRun:
    nodes: int
    kind: str  # lossy or overloaded
    minutes: float
    rounds: bool
    marks: Marks = field(default_factory=Marks)
    wall: float = 0.0


def lossy_run(nodes: int, minutes: float, seed: int = 1, rounds: bool = True) -> FaultRun:
    """10 % loss, and one member paused 1 s every minute."""
    started = time.monotonic()
    sim = _cluster(nodes, seed, "lossy", rounds, loss=0.1)
    run = FaultRun(nodes, "lossy", minutes, rounds)
    paused = f"n{nodes // 3}"
    for second in range(round(minutes * 60)):
        if second % 60 == 30:
            sim.crash(paused)  # stopped: what it is sent is lost, its timers wait
        elif second % 60 == 31:
            sim.restart(paused, keep_state=True)
        sim.run_for(1.0)
        run.marks.take(sim)
    run.wall = time.monotonic() - started
    return run


def overloaded_run(nodes: int, minutes: float, seed: int = 1, rounds: bool = True,
                   slow: float = 0.3) -> FaultRun:  # fmt: skip
    """One member whose every handler runs `slow` seconds late."""
    started = time.monotonic()
    sim = _cluster(nodes, seed, "overloaded", rounds)
    run = FaultRun(nodes, "overloaded", minutes, rounds)
    node: SimNode = sim.nodes[f"n{nodes // 4}"]
    node.slow = slow
    for _ in range(round(minutes * 60)):
        sim.run_for(1.0)
        run.marks.take(sim)
    run.wall = time.monotonic() - started
    return run


def memberlist_timeout(nodes: int) -> tuple[float, float]:
    """memberlist's suspicion timeout at its LAN defaults (SuspicionMult 4, probe interval
    1 s, SuspicionMaxTimeoutMult 6): 4 x log10(N) x 1 s, up to 6 times that, in seconds."""
    shortest = 4 * max(1.0, math.log10(nodes))
    return shortest, 6 * shortest


def ours_timeout(nodes: int) -> tuple[float, float]:
    shortest, longest = suspicion_bounds_ms(detect_config(), nodes)
    return shortest / 1000, longest / 1000
