"""A fleet-wide rate limit in virtual time: the node's own decision and counter code
(gossip/ratelimit.py, gossip/counters.py) on every simulated node, requests offered at a
steady rate through random nodes, and how many each window admits. The overshoot it
predicts comes from the propagation delay alone: the simulator does not model CPU time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

from gossip.config import Config
from gossip.counters import Counting, window_of
from gossip.ratelimit import Rate, admit
from simulations.engine import EPOCH_MS, Simulation
from simulations.network import NetworkModel
from simulations.timeline import to_us


@dataclass(frozen=True)
class RateLimitRun:
    nodes: int = 4
    offered: float = 1000.0  # requests per second, cluster-wide, each through a random node
    limit: int = 500
    period: float = 10.0  # seconds
    windows: int = 5
    latency: float = 0.002  # one-way seconds: base, and the mean of an exponential tail
    latency_tail: float = 0.002
    interval: float = 0.1  # gossip interval (the workers' default under uvicorn --workers)


@dataclass(frozen=True)
class WindowFigures:
    admitted: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.admitted / self.limit

    @property
    def overshoot(self) -> int:
        return max(0, self.admitted - self.limit)


def run_ratelimit(run: RateLimitRun, seed: int | str = 1) -> list[WindowFigures]:
    """Admitted requests per window of the limit, over `run.windows` whole windows."""
    config = Config(gossip_interval=run.interval)
    sim = Simulation(config, NetworkModel(latency=run.latency, latency_tail=run.latency_tail), seed)
    sim.add_nodes(run.nodes)
    sim.introduce_all()
    sim.run_for(5 * run.interval)  # the members meet
    counting = {node_id: Counting(node.protocol) for node_id, node in sim.nodes.items()}
    rate, length = Rate(run.limit, run.period), round(run.period * 1000)
    rng = random.Random(f"{seed}:requests")
    ids = list(sim.nodes)
    # The requests start at a window's start, by the nodes' wall clocks.
    first = window_of(EPOCH_MS + sim.now_us // 1000, length) + 1
    start = (first * length - EPOCH_MS) * 1000
    admitted: dict[int, int] = {}

    def request() -> None:
        node = sim.nodes[rng.choice(ids)]
        now = sim.node_ms(node)
        if admit(counting[node.id], "client", rate, 1, now).allowed:
            window = window_of(now, length)
            admitted[window] = admitted.get(window, 0) + 1
            sim.changed(node)  # push the count, as the node's write path does

    total = round(run.offered * run.period * run.windows)
    for i in range(total):
        sim.at(start + to_us(i / run.offered), partial(request))
    sim.run_until((start + to_us(run.period * run.windows)) / 1_000_000 + 1)
    return [WindowFigures(admitted.get(first + w, 0), run.limit) for w in range(run.windows)]
