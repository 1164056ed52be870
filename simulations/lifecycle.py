"""Node lifecycle scenarios: crash, restart, leave, pause and long absence, in virtual
time, with the core's own failure detector and tombstone collection.

Every node's view of every other is read from `membership.members[id].status`, after each
round and each message the node handles (a watcher), so a status that holds for a moment
only is still seen. Detection times are therefore exact, not sampled.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.config import Config
from gossip.membership import ALIVE, DEAD, LEFT, SUSPECT
from simulations.network import NetworkModel
from simulations.scenarios import Report, Story
from simulations.simnode import SimNode

INTERVAL = 0.2  # seconds, as in the real-cluster lifecycle tests
GRACE = 10.0  # tombstone_grace, short so that a long absence fits in a quick run
REAP = 30.0  # reap_after


def life_config(**changes: object) -> Config:
    """Interval 0.2 s, default phi thresholds, a short grace period and reap timeout."""
    base: dict[str, object] = {"gossip_interval": INTERVAL, "fanout": 3, "tombstone_grace": GRACE,
                               "reap_after": REAP}
    return Config(**{**base, **changes})  # type: ignore[arg-type]


def life_network() -> NetworkModel:
    return NetworkModel(latency=0.002, loss=0.01)


@dataclass
class StatusLog:
    """Every moment some node saw a member it should not doubt as suspect or dead."""

    story: Story
    trusted: set[str] = field(default_factory=set)  # members that are up and not leaving
    false_suspect: set[tuple[str, str]] = field(default_factory=set)  # (observer, member)
    false_dead: set[tuple[str, str]] = field(default_factory=set)
    false_dead_events: int = 0  # times a trusted member went from not dead to dead somewhere

    def __post_init__(self) -> None:
        self._dead_now: set[tuple[str, str]] = set()
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        if not node.up:
            return
        for member_id, member in node.protocol.membership.members.items():
            pair = (node.id, member_id)
            trusted = member_id in self.trusted
            if trusted and member.status == SUSPECT:
                self.false_suspect.add(pair)
            if member.status != DEAD:
                self._dead_now.discard(pair)
            elif pair not in self._dead_now:  # a new DEAD verdict
                self._dead_now.add(pair)
                if trusted:
                    self.false_dead.add(pair)
                    self.false_dead_events += 1
                    self.story.sim.note(f"{node.id} marks live {member_id} dead")


def _form(s: Story, nodes: int, settle: float) -> StatusLog:
    """`nodes` nodes joining through n0, until each sees all others alive, then `settle`
    seconds so the detectors learn the heartbeat rhythm."""
    s.add_nodes(nodes)
    log = StatusLog(s, set(s.ids))
    s.wait_until(lambda: _all_see(s, s.ids, ALIVE), 30, "every node sees every other alive")
    s.wait(settle)
    return log


def _all_see(s: Story, members: list[str], status: str, observers: list[str] | None = None) -> bool:
    observers = observers or [n.id for n in s.sim.up_nodes()]
    return all(s.sim.status(o, m) == status for o in observers for m in members if o != m)


def _first_time(s: Story, member: str, status: str, start: float) -> dict[str, float]:
    """Per observer, the virtual seconds after `start` at which it first saw `member`
    with `status` (filled in by a watcher as the run goes on)."""
    seen: dict[str, float] = {}

    def watch(node: SimNode) -> None:
        if node.up and node.id != member and node.id not in seen and s.sim.status(node.id, member) == status:
            seen[node.id] = s.sim.now - start

    s.sim.watchers.append(watch)
    return seen


def _finish(s: Story, log: StatusLog, fault_ended: float, converged_after: float) -> Report:
    report = s.report(fault_ended, converged_after)
    report.figures["false suspect (pairs)"] = len(log.false_suspect)
    report.figures["false dead (events)"] = log.false_dead_events
    s.check(log.false_dead_events == 0, f"live members marked dead: {sorted(log.false_dead)[:5]}")
    return report


def _write_some(s: Story, count: int, prefix: str, writers: list[str]) -> None:
    for i in range(count):
        s.write(writers[i % len(writers)], f"{prefix}{i}", i)


def crash_detect(seed: int = 1, nodes: int = 10, quiet: float = 10.0) -> Report:
    """A node is killed; every other node must mark it dead. Detection time per observer,
    from the crash to its DEAD status, with the default phi thresholds."""
    s = Story("crash-detect", seed, life_config(), life_network())
    log = _form(s, nodes, quiet)
    victim = s.ids[-1]
    log.trusted.discard(victim)
    crashed = s.sim.now
    detected = _first_time(s, victim, DEAD, crashed)
    s.crash(victim)
    others = s.ids[:-1]
    s.wait_until(lambda: len(detected) == len(others), 60, f"every node marks {victim} dead")
    times = sorted(detected.values())
    report = _finish(s, log, crashed, max(times))
    report.figures.update({
        "detection median s": round(statistics.median(times), 3),
        "detection max s": round(max(times), 3),
        "detection min s": round(min(times), 3),
    })
    return report


def _restart(name: str, seed: int, nodes: int, down_for: float, *, keep_state: bool) -> Report:
    s = Story(name, seed, life_config(), life_network())
    log = _form(s, nodes, 5.0)
    _write_some(s, 20, "before", s.ids)
    s.wait_converged(10)
    victim, others = s.ids[-1], s.ids[:-1]
    node = s.sim.nodes[victim]
    old_generation = node.protocol.membership.me.generation
    held = len(node.protocol.live(s.sim.node_ms(node)))
    log.trusted.discard(victim)
    s.crash(victim)
    for i in range(int(down_for)):
        s.write(others[i % len(others)], f"during{i % 7}", i)
        s.wait(1)
    s.check(_all_see(s, [victim], DEAD, others), f"{victim} not marked dead while down")
    back = s.sim.now
    alive_at = _first_time(s, victim, ALIVE, back)
    s.restart(victim, keep_state=keep_state, new_life=True, seeds=[s.ids[0]])
    serves = len(node.protocol.live(s.sim.node_ms(node)))
    s.check(node.protocol.membership.me.generation > old_generation, "restarted without a new generation")
    same = s.sim.wait_for(s.sim.converged, 30, step=0.01)
    s.check(same is not None, f"{victim} did not reach the cluster's state hash")
    s.wait_until(lambda: _all_see(s, [victim], ALIVE, others), 30, f"every node sees {victim} alive")
    alive = max(alive_at.values())
    log.trusted.add(victim)
    took = s.sim.now - back if same is None else same
    report = _finish(s, log, back, took)
    report.figures.update({
        "keys served at restart": serves, "keys held before crash": held,
        "alive everywhere after s": round(alive, 3), "same state hash after s": round(took, 3),
        "resets": sum(n.protocol.stats.resets for n in s.sim.nodes.values()),
    })
    if keep_state:
        s.check(serves == held, f"restarted with {serves} keys, held {held}")
    else:
        s.check(serves == 0, "an empty restart served keys before talking to anyone")
    return report


def restart_empty(seed: int = 1, nodes: int = 10, down_for: float = 10.0) -> Report:
    """A node killed (marked dead everywhere), restarted empty with a new generation and
    one seed: it must be marked alive everywhere and reach the cluster's state hash."""
    return _restart("restart-empty", seed, nodes, down_for, keep_state=False)


def restart_state(seed: int = 1, nodes: int = 10, down_for: float = 10.0) -> Report:
    """The same, restarted from a snapshot of its store and clock (a data directory): it
    serves its old state at once and catches up with what it missed."""
    return _restart("restart-state", seed, nodes, down_for, keep_state=True)


def pause(seed: int = 1, nodes: int = 10, minutes: float = 1.0) -> Report:
    """A node paused for 1 s every 5 s (SIGSTOP/SIGCONT: messages to it are lost meanwhile,
    and it resumes with its state and generation): nobody may mark it dead."""
    s = Story("pause", seed, life_config(), life_network())
    log = _form(s, nodes, 5.0)
    victim = s.ids[-1]
    started = s.sim.now
    for _ in range(int(minutes * 60 / 5)):
        s.crash(victim)
        s.wait(1)
        s.restart(victim, keep_state=True)
        s.wait(4)
    report = _finish(s, log, s.sim.now, s.wait_converged(10))
    report.notes.append(f"paused 1 s every 5 s for {s.sim.now - started:.0f} virtual s")
    return report


def _leave(name: str, seed: int, nodes: int, leaver_index: int, after: float) -> Report:
    s = Story(name, seed, life_config(), life_network())
    log = _form(s, nodes, 5.0)
    leaver = s.ids[leaver_index]
    address = s.sim.nodes[leaver].address
    others = [i for i in s.ids if i != leaver]
    log.trusted.discard(leaver)
    dead = _first_time(s, leaver, DEAD, s.sim.now)
    said = s.sim.now
    shown_left = _first_time(s, leaver, LEFT, said)
    s.sim.leave(leaver)
    s.wait(2 * INTERVAL)  # its goodbyes are answered, then the process exits
    s.crash(leaver)
    stopped, sent_before = s.sim.now, s.sim.sent_to[address]
    s.wait_until(lambda: _all_see(s, [leaver], LEFT, others), 30, f"every node shows {leaver} left")
    s.wait(after)
    s.check(not dead, f"nodes marked the leaver dead: {sorted(dead)}")
    sent_after = s.sim.sent_to[address] - sent_before
    report = _finish(s, log, stopped, s.wait_converged(10))
    report.figures.update({
        "left everywhere after s": round(max(shown_left.values()), 3),
        "marked dead by": len(dead),
        "messages to it after stop": sent_after,
        "still listed by": sum(s.sim.status(o, leaver) is not None for o in others),
    })
    s.check(sent_after == 0, f"{sent_after} messages addressed to {leaver} after it left")
    return report


def leave(seed: int = 1, nodes: int = 10, after: float = 3 * REAP) -> Report:
    """A node says goodbye (GossipProtocol.leave), its messages are delivered, it stops:
    every node shows it as left, never dead, and no message is addressed to it again,
    also after it is reaped (run for `after` virtual seconds)."""
    return _leave("leave", seed, nodes, -1, after)


def leave_seed(seed: int = 1, nodes: int = 10, after: float = 3 * REAP) -> Report:
    """The same for n0, the node every other one was given as its seed."""
    return _leave("leave-seed", seed, nodes, 0, after)


def _absence(name: str, seed: int, nodes: int, away: float, *, new_deleter: bool) -> Report:
    """A node cut off for `away` seconds while keys are deleted elsewhere. Shorter than
    reap_after, nobody collects a delete it has not seen, so it catches up with no reset;
    longer, it is forgotten, the others collect, and on its return it is reset."""
    s = Story(name, seed, life_config(), life_network())
    log = _form(s, nodes, 5.0)
    victim = s.ids[-1]
    writers = s.ids[1:-1] if new_deleter else s.ids
    _write_some(s, 30, "k", writers)
    s.wait_converged(10)
    log.trusted.discard(victim)
    s.cut("away", [victim])
    cut_at = s.sim.now
    # Deletes on the connected side; with new_deleter, by n0, which has never written.
    deleters = [s.ids[0]] if new_deleter else s.ids[:-1]
    deleted = [f"k{i}" for i in range(0, 30, 3)]
    for i, key in enumerate(deleted):
        s.sim.delete(deleters[i % len(deleters)], key)
    _write_some(s, 5, "new", s.ids[:-1])
    back: list[SimNode] = []
    resurrected: set[tuple[str, str]] = set()

    def watch(node: SimNode) -> None:  # after the heal, a deleted key read anywhere
        if not back or not node.up or (node.id == victim and not node.protocol.stats.resets):
            return
        now = s.sim.node_ms(node)
        for key in deleted:
            if node.protocol.read(key, now) is not None:
                resurrected.add((node.id, key))

    s.sim.watchers.append(watch)
    s.wait(away)
    collected = sum(s.sim.nodes[i].protocol.stats.collected for i in s.ids[:-1])
    s.heal("away")
    healed = s.sim.now
    back.append(s.sim.nodes[victim])
    log.trusted.add(victim)
    took = s.sim.wait_for(s.sim.converged, 30, step=0.01)
    s.wait(5)  # and it stays so
    final = s.sim.nodes[victim]
    now = s.sim.node_ms(final)
    resurrected |= {(victim, k) for k in deleted if final.protocol.read(k, now) is not None}
    s.check(not resurrected, f"deleted keys still or again live: {sorted(resurrected)[:8]}")
    s.check(took is not None, "no convergence within 30 s of the heal")
    resets = final.protocol.stats.resets
    others = sum(s.sim.nodes[i].protocol.stats.resets for i in s.ids[:-1])
    s.check(others == 0, "a node that stayed was reset")
    forgotten = away > REAP + 10  # dead after ~4 s, then reaped REAP seconds later
    if forgotten:
        s.check(1 <= resets <= 2, f"the forgotten node was reset {resets} times")
    else:
        s.check(resets == 0, f"the absent node was reset {resets} times")
        s.check(collected == 0, f"{collected} deletes collected before the absent node had them")
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures.update({
        "absence s": round(healed - cut_at, 3), "collected while away (others)": collected,
        "resets of the absent node": resets, "resets of the others": others,
        "deleted keys back (node, key)": len(resurrected),
        "catch-up after heal s": round(took, 3),  # type: ignore[arg-type]
    })
    return report


def long_absence(seed: int = 1, nodes: int = 10, away: float = 2 * GRACE) -> Report:
    """A node cut off longer than tombstone_grace (shorter than reap_after) while keys are
    deleted elsewhere: nobody collects those deletes before it has them, so it catches
    up with no reset, and no deleted key comes back."""
    return _absence("long-absence", seed, nodes, away, new_deleter=False)


def short_absence(seed: int = 1, nodes: int = 10, away: float = GRACE / 2) -> Report:
    """The control: an absence shorter than the grace period; tombstones reach the node
    by ordinary gossip and nobody is reset."""
    return _absence("short-absence", seed, nodes, away, new_deleter=False)


def forgotten(seed: int = 1, nodes: int = 10, away: float = 2 * REAP) -> Report:
    """A node cut off longer than reap_after: the others forget it and collect deletes
    it never saw; on its return it is reset (R7c), and no deleted key comes back."""
    return _absence("forgotten", seed, nodes, away, new_deleter=False)


def forgotten_new_writer(seed: int = 1, nodes: int = 10, away: float = 2 * REAP) -> Report:
    """The same, the deletes made by a writer it never heard of."""
    return _absence("forgotten-new-writer", seed, nodes, away, new_deleter=True)


LIFECYCLE: dict[str, Callable[..., Report]] = {
    "crash-detect": crash_detect,
    "restart-empty": restart_empty,
    "restart-state": restart_state,
    "pause": pause,
    "leave": leave,
    "leave-seed": leave_seed,
    "long-absence": long_absence,
    "short-absence": short_absence,
    "forgotten": forgotten,
    "forgotten-new-writer": forgotten_new_writer,
}
