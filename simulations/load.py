"""Traffic under a steady write load: what gossip costs per node, by message kind.

The writes come `rate` a second, paced, each through a random node; or, with `clients`,
from that many writers per node that each send the next write as soon as the last is
answered (as wrk's connections do: as many writes as the cluster takes). With a CPU
model (simulations/cpu.py) a node takes each write in its turn, at its cost."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import partial

from gossip.config import Config
from simulations.cpu import CpuModel
from simulations.delivery import KINDS
from simulations.engine import Simulation
from simulations.network import LossUnit, NetworkModel
from simulations.timeline import to_us


@dataclass(frozen=True)
class Load:
    nodes: int
    rate: float  # writes per second, cluster-wide, each through a random node
    seconds: float = 30.0
    keys: int = 500
    value_bytes: int = 100
    interval: float = 1.0
    eager: bool = True
    loss: float = 0.0
    loss_unit: LossUnit = "message"
    warmup: float = 5.0  # seconds of quiet gossip before the writes
    latency: float = 0.001  # one-way seconds: base, and the mean of an exponential tail
    latency_tail: float = 0.0
    cpu: CpuModel | None = None  # the nodes' CPU time; None: not modelled
    clients: int = 0  # writers per node, each waiting for its last answer (rate unused); 0: paced


@dataclass(frozen=True)
class LoadCost:
    """Per node and second of the load, by message kind."""

    kilobytes: dict[str, float]
    messages: dict[str, float]
    converged: bool  # every node held the same state a few rounds after the load
    writes: int = 0  # writes acknowledged during the load
    push_seconds: float = 0.0  # an eager push's mean time, from being taken to its end
    cpu: float = 0.0  # CPU seconds a node used per second of the load (with a CPU model)

    def per_write(self, nodes: int, seconds: float, kind: str = "rumor") -> float:
        """Messages of `kind` per acknowledged write, cluster-wide."""
        return self.messages[kind] * nodes * seconds / max(1, self.writes)


def run_load(load: Load, seed: int | str) -> LoadCost:
    config = Config(gossip_interval=load.interval, eager_push=load.eager)
    network = NetworkModel(latency=load.latency, latency_tail=load.latency_tail, loss=load.loss,
                           loss_unit=load.loss_unit)
    sim = Simulation(config, network, seed, cpu=load.cpu)
    sim.add_nodes(load.nodes)
    sim.introduce_all()
    sim.run_for(load.warmup)
    bytes0, messages0 = dict(sim.traffic.bytes), dict(sim.traffic.messages)
    pushes0, push_seconds0 = sim.traffic.pushes_ended, sim.traffic.push_seconds
    cpu0 = sum(sim.cpus.used.values())
    rng = random.Random(seed)
    ids, value = list(sim.nodes), "x" * load.value_bytes
    start, end = sim.now_us, sim.now_us + to_us(load.seconds)
    per_write = sim.cpus.model.per_write
    written, numbers = 0, itertools.count()

    def commit(node_id: str, i: int) -> None:
        nonlocal written
        sim.write(node_id, f"k{i % load.keys}", value)
        written += sim.now_us <= end

    def write(i: int) -> None:  # the keys in turn, each through a random node
        node_id = rng.choice(ids)
        sim.cpus.run(sim.nodes[node_id].address, per_write, partial(commit, node_id, i))

    def client(node_id: str) -> None:  # the next write, sent as soon as the last is answered
        if sim.now_us < end:
            sim.cpus.run(sim.nodes[node_id].address, per_write, partial(answered, node_id))

    def answered(node_id: str) -> None:
        commit(node_id, next(numbers))
        sim.after(2 * load.latency, partial(client, node_id))

    if load.clients:
        for node_id in ids:
            for _ in range(load.clients):
                client(node_id)
    else:
        for i in range(round(load.seconds * load.rate)):
            sim.at(start + to_us(i / load.rate), partial(write, i))
    sim.run_for(load.seconds)
    scale = load.nodes * load.seconds
    kilobytes = {k: (sim.traffic.bytes[k] - bytes0[k]) / 1000 / scale for k in KINDS}
    messages = {k: (sim.traffic.messages[k] - messages0[k]) / scale for k in KINDS}
    pushes = sim.traffic.pushes_ended - pushes0
    push_seconds = (sim.traffic.push_seconds - push_seconds0) / max(1, pushes)
    cpu = (sum(sim.cpus.used.values()) - cpu0) / scale
    converged = sim.wait_for(sim.converged, timeout=10 * load.interval) is not None
    return LoadCost(kilobytes, messages, converged, written, push_seconds, cpu)
