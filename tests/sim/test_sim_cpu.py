"""The simulator's CPU model (simulations/cpu.py): a node's work queues, the cores are
shared among the nodes with work, a push's round trip grows with its batch and with the
queue at its receiver; and with the model off nothing changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from gossip.clock import ZERO, Timestamp
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Outgoing, Reply, Rumor, RumorGroup, RumorItem, WriterDelta
from gossip.store import Entry
from simulations.cpu import CpuModel, Cpus
from simulations.engine import Simulation
from simulations.load import Load, run_load
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
    cpus = Cpus(CpuModel(cores=4), timeline)
    work = [(0.0, "b", 0.015), (0.0, "b", 0.020), (0.0, "c", 0.010)]
    ended = _runs(cpus, timeline, work)
    assert ended == {0: 15_000, 1: 35_000, 2: 10_000}  # b's second after both; c's alongside


def test_nodes_share_the_cores_while_more_of_them_are_busy() -> None:
    timeline = Timeline()
    cpus = Cpus(CpuModel(cores=1), timeline)
    # a alone for 5 ms, then a and b at half speed until a ends (15 ms), then b alone
    ended = _runs(cpus, timeline, [(0, "a", 0.010), (0.005, "b", 0.010), (0.030, "a", 0.010)])
    assert ended == {0: 15_000, 1: 20_000, 2: 40_000}
    assert cpus.used == pytest.approx({"a": 0.020, "b": 0.010})


def test_what_a_message_costs_its_receiver_and_its_answer_its_sender() -> None:
    cpu = CpuModel(per_message=0.1, per_entry=0.01, per_summary=0.2, per_delta_entry=0.001, per_send=0.04)
    me = MemberInfo("n0", "sim://n0", 1, 0)
    entries = tuple(Entry(f"k{i}", i, Timestamp(i + 1, 0), "n0") for i in range(3))
    delta = (WriterDelta("n0", ZERO, entries[-1].ts, entries),)
    rumor = Rumor(me, (RumorGroup((), tuple(RumorItem(e, ZERO) for e in entries)),))
    assert cpu.serve(rumor) == pytest.approx(0.1 + 3 * 0.01)
    assert cpu.serve(Exchange(me, {}, (me,), delta)) == pytest.approx(0.1 + 0.2 + 3 * 0.001)
    assert cpu.answer(Reply(me, {}, (me,), delta)) == pytest.approx(0.02 + 0.2 + 3 * 0.001)
    assert cpu.answer(None) == pytest.approx(0.02)  # a push's answer


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
    one = cpu.per_send + 2 * LATENCY + cpu.per_message + cpu.per_entry
    twenty = cpu.per_send + 2 * LATENCY + cpu.per_message + 20 * cpu.per_entry
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
    serve = round((cpu.per_message + cpu.per_entry) * 1e6)
    lat = round(LATENCY * 1e6)
    assert sorted(ends) == [("n0", "n1", 2 * lat + serve), ("n0", "n2", 2 * lat + serve),
                            ("n2", "n0", 2 * lat + serve), ("n2", "n1", 2 * lat + 2 * serve)]


def test_a_cpu_model_without_cores_changes_nothing() -> None:
    load = Load(nodes=6, rate=40, seconds=3, interval=0.2, warmup=1, latency=0.002, latency_tail=0.001)
    plain = run_load(load, seed=3)
    coreless = CpuModel(per_message=0.01, per_entry=0.01, per_write=0.01)
    idle = run_load(dataclasses.replace(load, cpu=coreless), seed=3)
    assert idle == plain
    assert plain.cpu == 0 and plain.writes == 3 * 40


def test_under_a_closed_loop_the_cpu_sets_the_write_rate() -> None:
    """Writers that wait for their answers: the cluster takes what its cores allow."""
    cpu = CpuModel(per_message=0.0005, per_entry=0.00001, per_send=0.0002, per_write=0.001, cores=2)
    load = Load(nodes=4, rate=0, seconds=2, keys=10**9, interval=0.2, warmup=1, latency=0.0001,
                cpu=cpu, clients=4)
    cost = run_load(load, seed=1)
    assert cost.cpu == pytest.approx(2 / 4, rel=0.05)  # every core busy all the time
    assert cost.writes < 2 * 2 / cpu.per_write  # fewer than if writes had the cores to themselves
    assert cost.converged
