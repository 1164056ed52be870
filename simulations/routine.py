"""Routine operations that once lost acknowledged data or left nodes disagreeing for
good, found by a randomized fault search and written down as stories. Each runs at the
settings given (by default, those the cases were found at: rounds every second, a
tombstone_grace and reap_after of an hour) and fails, naming its seed, if a write is
lost, a node is reset, or the cluster does not agree.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.config import Config
from simulations.acks import Ack
from simulations.network import NetworkModel
from simulations.scenarios import Report, Story

# The settings the cases were first seen at (the defaults then).
FOUND_AT = Config(gossip_interval=1.0, tombstone_grace=3600.0, reap_after=3600.0)


def _story(name: str, seed: int, config: Config, nodes: int) -> Story:
    s = Story(name, seed, config, NetworkModel(latency=0.002, loss=0.01))
    s.add_nodes(nodes)
    s.wait_until(lambda: all(len(n.protocol.membership.members) == nodes - 1 for n in s.sim.nodes.values()),
                 60, "every node knows every other")
    return s


def _grace(config: Config) -> float:
    return config.tombstone_grace


def _finish(s: Story, fault_ended: float, timeout: float = 120, settle: float = 60,
            may_lose: Callable[[Ack], bool] = lambda ack: False) -> Report:
    took = s.wait_converged(timeout)
    s.wait(settle)  # and it stays so
    s.check(s.sim.converged(), f"the nodes agreed, then disagreed again within {settle} s")
    resets = {n.id: n.protocol.stats.resets for n in s.sim.nodes.values() if n.protocol.stats.resets}
    s.check(not resets, f"nodes were reset: {resets}")
    report = s.report(fault_ended, took, may_lose)
    report.figures["collected"] = sum(n.protocol.stats.collected for n in s.sim.nodes.values())
    nodes = s.sim.nodes.values()
    report.figures["digest writers (max)"] = max(len(n.protocol.store.watermarks) for n in nodes)
    return report


def down_past_grace(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """Two nodes; n1 is stopped for a little over the grace period while n0 keeps taking
    writes and deletes; n1 comes back from its data directory. Nothing is lost, nobody
    is reset, both agree (once, both reset and the oldest key was gone)."""
    s = _story("down-past-grace", seed, config, 2)
    for i in range(5):
        s.write("n0" if i % 2 else "n1", f"old{i}", i)
    s.wait_converged(30)
    saved = s.sim.save("n1")
    s.crash("n1")
    away = _grace(config) + 60
    for i in range(10):
        s.write("n0", f"during{i}", i)
        if i % 3 == 0:
            s.sim.delete("n0", f"during{i}")
        s.wait(away / 10)
    s.sim.restart("n1", keep_state=True, new_life=True, snapshot=saved, seeds=["n0"])
    return _finish(s, s.sim.now)


def paused_cluster(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """Every node is paused for longer than the grace period (a host suspended), after
    a write both held: the write survives, nobody is reset."""
    s = _story("paused-cluster", seed, config, 2)
    s.write("n0", "k", "held by both")
    s.sim.delete("n1", "gone")
    s.wait_converged(30)
    for node in ("n0", "n1"):
        s.crash(node)
    s.wait(_grace(config) + 60)
    for node in ("n0", "n1"):
        s.restart(node, keep_state=True)
    return _finish(s, s.sim.now)


def join_under_ttl_churn(seed: int = 1, config: Config = FOUND_AT, keys: int = 40,
                         per_message: int = 5) -> Report:
    """Old keys, and a stream of writes with a TTL to other keys; a new node joins and
    catches up over many messages (`per_message` entries each) while expired entries are
    collected around it. It must end with every old key (once, it missed most of them)."""
    config = config.replace(max_entries_per_message=per_message)
    s = _story("join-under-ttl-churn", seed, config, 3)
    for i in range(keys):
        s.write(f"n{i % 3}", f"old{i}", i)
    s.wait_converged(120)
    ttl = 30.0
    churn_until = _grace(config) + 3 * ttl + 120

    def churn(i: int = 0) -> None:
        if s.sim.now < churn_until:
            s.sim.write(f"n{i % 3}", f"ttl{i}", i, ttl=ttl)
            s.sim.after(1.0, lambda: churn(i + 1))

    churn()
    s.wait(_grace(config) + 2 * ttl)  # the old keys are older than the grace period now
    s.sim.add_node("n3", seeds=["n0"])
    s.wait(churn_until - s.sim.now + 1)
    report = _finish(s, s.sim.now, timeout=300)
    new = s.sim.nodes["n3"]
    held = sum(new.protocol.read(f"old{i}", s.sim.node_ms(new)) is not None for i in range(keys))
    s.check(held == keys, f"the new node holds {held} of {keys} old keys")
    report.figures["old keys on the new node"] = held
    return report


def writer_restarts_after_a_lost_write(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """n2 writes a key while cut off (the write never leaves it), is reconnected and
    deletes the key (that push gets through), then restarts empty. Nobody holds the write
    the delete follows, so nobody can hold that writer's history up to the delete. Run
    past the grace period plus 20 minutes: no reset (once, 452 in those 20 minutes)."""
    s = _story("writer-restarts-after-a-lost-write", seed, config, 3)
    s.write("n0", "x", "before")
    s.write("n2", "y", "some history of n2's writer everyone holds")
    s.wait_converged(30)
    s.cut("n2-alone", ["n2"])
    s.write("n2", "x", "lost")
    s.wait(0.5)
    s.heal("n2-alone")
    s.sim.delete("n2", "x")
    s.wait(0.005)  # the push of the delete is through; no exchange has carried the write yet
    first_life = s.sim.nodes["n2"].protocol.writer
    s.crash("n2")
    s.restart("n2", keep_state=False, seeds=["n0"])
    s.wait(_grace(config) + 20 * 60)
    # The write never left n2, and the delete that follows it is held back until the
    # write arrives: restarted without its data, n2 lost both (docs/PROTOCOL.md, losses).
    return _finish(s, s.sim.now, may_lose=lambda ack: ack.origin == first_life and ack.key == "x")


def many_lives(seed: int = 1, config: Config = FOUND_AT, lives: int = 1100) -> Report:
    """A node restarted empty `lives` times (a worker recycled again and again), one
    write per life. Digests must track live nodes, not history: once, gossip stopped for
    good after 1,024 lives (every digest was refused as listing too many writers)."""
    s = _story("many-lives", seed, config, 3)
    largest = 0
    for life in range(lives):
        s.crash("n2")
        s.restart("n2", keep_state=False, seeds=["n0"])
        s.wait_until(s.sim.converged, 60, f"n2 to catch up in life {life}")
        s.write("n2", f"life{life % 20}", life)
        s.wait(config.gossip_interval)
        largest = max(largest, *(len(n.protocol.store.watermarks) for n in s.sim.nodes.values()))
    s.write("n0", "after", "every life")
    report = _finish(s, s.sim.now)
    refused = s.sim.traffic.rejected
    s.check(refused == 0, f"{refused} messages refused")
    report.figures["digest writers (largest seen)"] = largest
    return report


def restart_after_a_quiet_hour(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """An idle cluster for longer than the grace period, then a node restarts from its
    data directory and takes a write at once: no reset, the write kept (once, the old
    snapshot's last contact made it reset itself, and drop the write in 2 of 20 runs)."""
    s = _story("restart-after-a-quiet-hour", seed, config, 2)
    s.write("n0", "k", 1)
    s.wait_converged(30)
    s.wait(1)
    saved = s.sim.save("n1")  # a data directory is written when the state changes
    s.wait(_grace(config) + 60)
    s.crash("n1")
    s.wait(0.5)
    s.sim.restart("n1", keep_state=True, new_life=True, snapshot=saved, seeds=["n0"])
    s.write("n1", "k", "right after the restart")
    return _finish(s, s.sim.now)


def outage_just_under_grace(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """Two halves cut apart for 0.4 s less than the grace period; a key written right
    after the cut must reach the other half after the heal (once, it was refused as
    older than the grace period when it arrived)."""
    s = _story("outage-just-under-grace", seed, config, 4)
    for i in range(4):  # deletes every node holds, collected during the outage
        s.write(f"n{i}", f"gone{i}", i)
        s.sim.delete(f"n{i}", f"gone{i}")
    s.wait(1)
    s.cut("halves", ["n0", "n1"])
    s.write("n0", "right after the cut", 1)
    s.wait(_grace(config) - 0.4)
    s.heal("halves")
    return _finish(s, s.sim.now)


def lagging_clock(seed: int = 1, config: Config = FOUND_AT) -> Report:
    """n2's clock runs behind by more than max_offset for longer than the grace period,
    so it refuses its peers' messages (their timestamps look too far ahead); then it is
    set right. It must take every write it missed, old ones included, with no reset."""
    s = _story("lagging-clock", seed, config, 3)
    s.write("n0", "early", 1)
    s.sim.delete("n1", "early")  # collected during the lag: n2 has something collected
    s.wait_converged(30)
    s.sim.nodes["n2"].offset_ms = -int((config.max_offset + 5) * 1000)
    for i in range(5):  # older than the grace period once n2's clock is set right
        s.write(f"n{i % 2}", f"missed{i}", i)
    for i in range(int(_grace(config) + 60)):  # a write a second: every digest is too far ahead for n2
        s.write(f"n{i % 2}", "tick", i)
        s.wait(1)
    s.sim.nodes["n2"].offset_ms = 0
    return _finish(s, s.sim.now)


ROUTINE: dict[str, Callable[..., Report]] = {
    "down-past-grace": down_past_grace,
    "paused-cluster": paused_cluster,
    "join-under-ttl-churn": join_under_ttl_churn,
    "writer-restarts-after-a-lost-write": writer_restarts_after_a_lost_write,
    "many-lives": many_lives,
    "restart-after-a-quiet-hour": restart_after_a_quiet_hour,
    "outage-just-under-grace": outage_just_under_grace,
    "lagging-clock": lagging_clock,
}
