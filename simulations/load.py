"""Traffic under a steady write load: what gossip costs per node, by message kind."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

from gossip.config import Config
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


@dataclass(frozen=True)
class LoadCost:
    """Per node and second of the load, by message kind."""

    kilobytes: dict[str, float]
    messages: dict[str, float]
    converged: bool  # every node held the same state a few rounds after the load


def run_load(load: Load, seed: int | str) -> LoadCost:
    config = Config(gossip_interval=load.interval, eager_push=load.eager)
    network = NetworkModel(latency=load.latency, latency_tail=load.latency_tail, loss=load.loss,
                           loss_unit=load.loss_unit)
    sim = Simulation(config, network, seed)
    sim.add_nodes(load.nodes)
    sim.introduce_all()
    sim.run_for(load.warmup)
    bytes0, messages0 = dict(sim.traffic.bytes), dict(sim.traffic.messages)
    rng = random.Random(seed)
    ids, value = list(sim.nodes), "x" * load.value_bytes
    start = sim.now_us

    def write(i: int) -> None:  # the keys in turn, each through a random node
        sim.write(rng.choice(ids), f"k{i % load.keys}", value)

    for i in range(round(load.seconds * load.rate)):
        sim.at(start + to_us(i / load.rate), partial(write, i))
    sim.run_for(load.seconds)
    scale = load.nodes * load.seconds
    kilobytes = {k: (sim.traffic.bytes[k] - bytes0[k]) / 1000 / scale for k in KINDS}
    messages = {k: (sim.traffic.messages[k] - messages0[k]) / scale for k in KINDS}
    converged = sim.wait_for(sim.converged, timeout=10 * load.interval) is not None
    return LoadCost(kilobytes, messages, converged)
