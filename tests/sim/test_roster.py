"""A shared roster (simulations/roster.py) is `introduce_all` without the records nobody
reads: a run with probes alone gives the very same figures either way."""

from __future__ import annotations

import dataclasses

from simulations import detection
from simulations.engine import Simulation
from simulations.network import NetworkModel
from simulations.roster import introduce_all_shared

NODES = 200


def crash_figures(shared: bool, nodes: int = NODES) -> tuple[object, ...]:
    sim = Simulation(detection.detect_config(rounds=False), NetworkModel(latency=0.002, latency_tail=0.001),
                     f"roster:{nodes}", rounds=False)
    sim.add_nodes(nodes)
    if shared:
        introduce_all_shared(sim)
    else:
        sim.introduce_all()
    sim.run_for(5.0)
    sim.crash("n7")
    sim.run_for(8.0)
    statuses = tuple(sim.status(n.id, "n7") for n in sim.up_nodes())
    made = sum(dict.__len__(n.protocol.membership.members) for n in sim.nodes.values())
    return statuses, dataclasses.astuple(sim.traffic)[:2], sim.now, made


def test_a_shared_roster_runs_the_same_with_fewer_records() -> None:
    statuses, traffic, now, made_shared = crash_figures(shared=True)
    assert (statuses, traffic, now) == crash_figures(shared=False)[:3]
    assert set(statuses) == {"dead"}  # the crash was seen: the run did something
    assert made_shared < NODES * (NODES - 1) // 2  # and most records were never made
