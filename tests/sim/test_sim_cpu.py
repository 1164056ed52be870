"""The simulator's CPU model (simulations/cpu.py): a node's work queues, the cores are
shared among the nodes with work, a push's round trip grows with its batch and with the
queue at its receiver; and with the model off nothing changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gossip.config import Config
from gossip.messages import Outgoing
from simulations.cpu import CpuModel, Cpus
from simulations.engine import Simulation
from simulations.network import NetworkModel
from simulations.timeline import Timeline

LATENCY = 0.001


def _runs(cpus: Cpus, timeline: Timeline, work: list[tuple[float, str, float]]) -> dict[int, int]:
    """Each (when, address, cost) queued at `when`; the virtual us each one ended, by index."""
    ended: dict[int, int] = {}
    for i, (when, address, cost) in enumerate(work):
        def queue(i: int = i, address: str = address, cost: float = cost) -> None:
            cpus.run(address, cost, lambda: ended.__setitem__(i, timeline.now_us))

        timeline.after(when, queue)
    timeline.run_for(10)
    return ended


def test_a_nodes_work_waits_for_its_earlier_work() -> None:
    timeline = Timeline()
    cpus = Cpus(CpuModel(per_message=0.010, per_entry=0.001, cores=4), timeline)
    model = cpus.model
    work = [(0.0, "b", model.serve(5)), (0.0, "b", model.serve(10)), (0.0, "c", model.serve(0))]
    ended = _runs(cpus, timeline, work)
    assert ended == {0: 15_000, 1: 35_000, 2: 10_000}  # b's second after both; c's alongside


def test_nodes_share_the_cores_while_more_of_them_are_busy() -> None:
    timeline = Timeline()
    cpus = Cpus(CpuModel(cores=1), timeline)
    # a alone for 5 ms, then a and b at half speed until a ends (15 ms), then b alone
    ended = _runs(cpus, timeline, [(0, "a", 0.010), (0.005, "b", 0.010), (0.030, "a", 0.010)])
    assert ended == {0: 15_000, 1: 20_000, 2: 40_000}
    assert cpus.used == pytest.approx({"a": 0.020, "b": 0.010})


def test_off_runs_the_work_at_once() -> None:
    timeline = Timeline()
    cpus = Cpus(CpuModel(per_message=1.0, per_write=1.0), timeline)  # no cores: off
    ended = _runs(cpus, timeline, [(0.002, "a", 1.0), (0.002, "a", 1.0)])
    assert ended == {0: 2_000, 1: 2_000}
    assert not cpus.on and cpus.used == {}


def _cluster(nodes: int, cpu: CpuModel) -> tuple[Simulation, list[tuple[str, str, int]]]:
    """Nodes that know each other, no rounds (only pushes travel); and where each push's
    end is recorded: (sender, receiver, virtual us)."""
    sim = Simulation(Config(), NetworkModel(latency=LATENCY, latency_tail=0.0), seed=1, rounds=False, cpu=cpu)
    sim.add_nodes(nodes)
    sim.introduce_all()
    ends: list[tuple[str, str, int]] = []
    for node in sim.nodes.values():
        ended = node.protocol.push_ended

        def record(push: Outgoing, delivered: bool, node_id: str = node.id,
                   ended: Callable[[Outgoing, bool], None] = ended) -> None:
            ends.append((node_id, push.address.removeprefix("sim://"), sim.now_us))
            ended(push, delivered)

        node.protocol.push_ended = record  # type: ignore[method-assign]
    return sim, ends


def test_a_push_takes_the_senders_and_the_receivers_time_and_grows_with_its_batch() -> None:
    cpu = CpuModel(per_message=0.010, per_entry=0.001, per_send=0.004, cores=8)
    sim, ends = _cluster(2, cpu)
    for i in range(21):  # the first leaves at once, alone; the 20 others wait for it, together
        sim.write("n0", f"k{i}", i)
    sim.run_for(1)
    one = cpu.per_send + 2 * LATENCY + cpu.serve(1)
    twenty = cpu.per_send + 2 * LATENCY + cpu.serve(20)
    assert ends == [("n0", "n1", round(one * 1e6)), ("n0", "n1", round((one + twenty) * 1e6))]
    assert sim.traffic.pushes_ended == 2
    assert sim.traffic.push_seconds == pytest.approx(one + twenty, abs=1e-6)
    assert sim.converged()


def test_a_second_push_to_a_node_is_answered_after_both_are_served() -> None:
    cpu = CpuModel(per_message=0.010, per_entry=0.001, cores=8)
    sim, ends = _cluster(3, cpu)
    sim.write("n0", "a", 1)  # pushed to n1 and n2
    sim.write("n2", "c", 2)  # to n0 and n1, which serves it after n0's
    sim.run_for(1)
    serve = round(cpu.serve(1) * 1e6)
    lat = round(LATENCY * 1e6)
    assert sorted(ends) == [("n0", "n1", 2 * lat + serve), ("n0", "n2", 2 * lat + serve),
                            ("n2", "n0", 2 * lat + serve), ("n2", "n1", 2 * lat + 2 * serve)]
