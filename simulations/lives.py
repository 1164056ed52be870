"""Node lives that end, restart and come back: seven cases in which a fault search found
the rules about lives (forgetting members R18, retiring ended writers R20, a restored
node's resync R19, a newcomer's catch-up R7d) breaking docs/PROTOCOL.md's contract,
"What can be lost, and when". Each is a story in virtual time with the settings it
needs (short rounds, grace and reap periods, small clusters), so that each runs in
about a second of CPU.

A story checks only what can be seen from outside the core: what a node reads, how
often it was reset, whether it is still catching up, which messages were refused, and
whether the nodes agree. It raises ScenarioFailed (seed, trace) saying in words all that
went wrong, or returns a Report. `python -m simulations.lives [NAME ...]` runs them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.config import Config
from simulations.network import NetworkModel
from simulations.scenarios import Report, ScenarioFailed, Story
from simulations.simnode import SimNode

INTERVAL = 0.2  # seconds between rounds
GRACE = 10.0  # tombstone_grace
REAP = 30.0  # reap_after


def lives_config(**changes: object) -> Config:
    """Rounds every 0.2 s, a grace period of 10 s and reap_after of 30 s, unless changed."""
    base: dict[str, object] = {"gossip_interval": INTERVAL, "fanout": 3, "tombstone_grace": GRACE,
                               "reap_after": REAP}
    return Config(**{**base, **changes})  # type: ignore[arg-type]


def _network() -> NetworkModel:
    return NetworkModel(latency=0.002, loss=0.0)  # no random loss: each story names its faults


def _form(s: Story, nodes: int) -> None:
    """`nodes` nodes joining through n0, until each knows every other; then two seconds
    for their detectors to learn the rhythm of heartbeats."""
    s.add_nodes(nodes)
    s.wait_until(lambda: all(len(n.protocol.membership.members) == nodes - 1 for n in s.sim.nodes.values()),
                 30, "every node knows every other")
    s.wait(2)


def _reads(s: Story, node: SimNode, key: str) -> bool:
    return node.protocol.read(key, s.sim.node_ms(node)) is not None


def _times(at: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in at) + " s"


@dataclass
class Resets:
    """Every reset, as (virtual seconds, node id), seen in the nodes' reset counters."""

    story: Story
    seen: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._count: dict[str, int] = {}
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        count, before = node.protocol.stats.resets, self._count.get(node.id, 0)
        if count > before:
            self.seen.extend((self.story.sim.now, node.id) for _ in range(count - before))
            self._count[node.id] = count
            self.story.sim.note(f"{node.id} is reset ({count} resets)")

    def of(self, node_id: str) -> list[float]:
        return [at for at, n in self.seen if n == node_id]

    def apart_from(self, allowed: set[str]) -> dict[str, list[float]]:
        """The resets of nodes not in `allowed`, by node."""
        out: dict[str, list[float]] = {}
        for at, node in self.seen:
            if node not in allowed:
                out.setdefault(node, []).append(at)
        return out

    def words(self, allowed: set[str]) -> str:
        return "; ".join(f"{node} at {_times(at)}" for node, at in sorted(self.apart_from(allowed).items()))


@dataclass
class DeletedReads:
    """Every (node, key) that reads one of `keys` (deleted) live from now on, and when
    first; `exempt(node)` leaves out a node whose stale state the contract lets it show
    until it is reset."""

    story: Story
    keys: list[str]
    exempt: Callable[[SimNode], bool] = lambda node: False
    back: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        if not node.up or self.exempt(node):
            return
        for key in self.keys:
            if (node.id, key) not in self.back and _reads(self.story, node, key):
                self.back[(node.id, key)] = self.story.sim.now

    def words(self) -> str:
        return ", ".join(f"{key} on {node} at {at:.2f} s" for (node, key), at in sorted(self.back.items()))


@dataclass
class CatchUps:
    """Each time a node finishes catching up (`bootstrapping` turns false), how many of
    `keys` it reads then: a node that has caught up holds what every node held long
    before."""

    story: Story
    keys: list[str]
    done: list[tuple[float, str, int]] = field(default_factory=list)  # (virtual s, node, keys read)

    def __post_init__(self) -> None:
        self._catching_up: dict[str, bool] = {}
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        now = node.protocol.bootstrapping
        if self._catching_up.get(node.id) and not now:
            held = sum(_reads(self.story, node, key) for key in self.keys)
            self.done.append((self.story.sim.now, node.id, held))
            self.story.sim.note(f"{node.id} has caught up, reading {held} of {len(self.keys)} old keys")
        self._catching_up[node.id] = now

    def short(self) -> list[tuple[float, str, int]]:
        return [d for d in self.done if d[2] < len(self.keys)]


def _lost(s: Story) -> list[str]:
    """The acknowledged writes some up node neither holds nor holds something newer for,
    in words, grouped by the nodes that lack them."""
    lacking: dict[tuple[str, str, bool, str], list[str]] = {}
    for node, ack in s.sim.lost_acks():
        writer = ack.origin.rpartition("#")[0]
        lacking.setdefault((ack.key, repr(ack.value), ack.deleted, writer), []).append(node)
    groups: dict[tuple[str, ...], list[str]] = {}
    for (key, value, deleted, writer), nodes in sorted(lacking.items()):
        what = f"the delete of {key}" if deleted else f"{key}={value}"
        groups.setdefault(tuple(nodes), []).append(f"{what} (taken by {writer})")
    return [f"acknowledged writes lost on {', '.join(nodes)}: {', '.join(writes)}"
            for nodes, writes in groups.items()]


def _agree(s: Story, within: float) -> float | None:
    """Virtual seconds until every up node has the same live state, or None."""
    return s.sim.wait_for(s.sim.converged, within, step=0.01)


def _verdict(s: Story, problems: list[str]) -> None:
    if problems:
        s.fail("; ".join(problems))


def _churn(s: Story, writers: list[str], until: float, prefix: str = "w") -> None:
    """Each second until `until`, one of `writers` (in turn) writes a new key and deletes
    the one written two seconds before: routine traffic that leaves tombstones for
    collection to take, so that every node's newest collection keeps moving."""

    def step(i: int) -> None:
        if s.sim.now >= until:
            return
        node = writers[i % len(writers)]
        if s.sim.nodes[node].up:
            s.sim.write(node, f"{prefix}{i}", i)
            if i >= 2:
                s.sim.delete(node, f"{prefix}{i - 2}")
        s.sim.after(1.0, lambda: step(i + 1))

    step(0)


def majority_node_reset_after_heal(seed: int = 1, nodes: int = 7, view_size: int = 2) -> Report:
    """Seven nodes with small member views (`view_size` records a message) and routine
    traffic (writes and deletes) on n1..n6. n0 is cut off for reap_after + 15 s: the six
    others rightly forget it and collect deletes it never saw, and on the heal it is
    rightly reset (contract item 3). But n0, alone, has shown every other member dead for
    longer than reap_after, and its reset leaves its member list as it was. Just after the
    heal, once views have brought it the heartbeats of three or four of the six (with
    itself, a majority: R18), it forgets the others, none of which was ever cut off (at
    seed 1: n2, n3 and n5, 0.2 s after it has caught up). Its newest collection moves on
    after that (the routine deletes are collected), so it sends them `forgotten` evidence
    (R7c), and they are reset and drop the state of their lives: contract item 7 says no
    node is reset but as item 3 says."""
    s = Story("majority-node-reset-after-heal", seed, lives_config(view_size=view_size), _network())
    _form(s, nodes)
    resets = Resets(s)
    cut_for = REAP + 15
    traffic_until = s.sim.now + cut_for + 20
    _churn(s, s.ids[1:], traffic_until)
    s.wait(2)
    s.cut("n0-away", ["n0"])
    s.wait(cut_for)
    s.heal("n0-away")
    healed = s.sim.now
    s.wait(traffic_until - s.sim.now)
    took = _agree(s, 30)
    problems = []
    if resets.apart_from({"n0"}):
        problems.append(f"nodes never cut off, forgotten or restored were reset after n0's heal at "
                        f"{healed:.2f} s: {resets.words({'n0'})}")
    if took is None:
        problems.append("the nodes did not agree within 30 s of the end of the traffic")
    problems.extend(_lost(s))
    _verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of n0"] = len(resets.of("n0"))
    return report


def endless_catch_up(seed: int = 1, per_life: int = 12, per_message: int = 16) -> Report:
    """Three nodes; n1 and n2 write `per_life` keys each (live values), then restart
    empty one after the other (a rolling restart), so that their first lives end and
    are retired everywhere once every member holds them (R20). A message carries at most
    `per_message` entries (max_entries_per_message; at the default of 10,000 the same
    happens past about 10,000 such entries). A newcomer, n3, then joins through n0 and
    catches up (R7d). It never completes: its digest leaves out the writers it has taken
    and retired, so each answer sends every one of them again from the start (R9); the
    two no longer fit in one message, so every answer is cut (`more`), and a catch-up
    completes only on an answer that is not. Meanwhile it never collects nor judges."""
    config = lives_config(max_entries_per_message=per_message)
    s = Story("endless-catch-up", seed, config, _network())
    _form(s, 3)
    for node in ("n1", "n2"):
        for j in range(per_life):
            s.write(node, f"{node}-first-life-{j}", j)
    s.write("n0", "n0-key", "live")
    s.wait_until(s.sim.converged, 10, "every node holds every key")
    for node in ("n1", "n2"):  # a rolling restart: one at a time, each caught up before the next
        s.crash(node)
        s.restart(node, keep_state=False, seeds=["n0"])
        restarted = s.sim.nodes[node]
        s.wait_until(lambda: not restarted.protocol.bootstrapping and s.sim.converged(), 30,  # noqa: B023
                     f"{node} to catch up after its restart")
        s.wait(3)
    n0 = s.sim.nodes["n0"]
    keys = len(n0.protocol.live(s.sim.node_ms(n0)))
    joined = s.sim.now
    new = s.sim.add_node("n3", seeds=["n0"])
    bound = 30.0
    took = s.sim.wait_for(lambda: not new.protocol.bootstrapping, bound, step=0.01)
    problems = []
    if took is None:
        held = len(new.protocol.live(s.sim.node_ms(new)))
        problems.append(f"the newcomer n3 had not completed its catch-up {bound:g} s (about "
                        f"{bound / INTERVAL:.0f} rounds) after joining: it holds {held} of the cluster's "
                        f"{keys} keys and is still catching up, so it never collects nor judges "
                        f"anyone")
    if _agree(s, 10) is None:
        problems.append("the nodes did not agree within 10 s after that")
    _verdict(s, problems)
    report = s.report(joined, took)  # type: ignore[arg-type]
    report.figures["newcomer caught up after s"] = round(took, 3)  # type: ignore[arg-type]
    return report


def retired_on_one_word(seed: int = 13, nodes: int = 10, view_size: int = 2, away: float = 50.0,
                        reap_after: float = 120.0) -> Report:
    """Ten nodes with small member views; reap_after is 120 s. n1 writes a key every node
    holds; n9 is cut off; n1 deletes the key (n9 never sees the delete) and n9 takes a
    write of its own, which only it holds. n1 then restarts empty: its first life has
    ended. It catches up through n0; with views this small it knows only some of the
    members when it is done (at seed 13, six of the nine: not n9), has heard from each,
    and retires its own first writer on their digests alone (R20); the grace period
    past, it collects the delete. Its peers retire that writer on its announcement and
    collect too, without n9, whose last digest does not hold the delete (R7a: every
    member must hold it). n9 comes back after `away` seconds, much less than reap_after:
    it is found behind those collections (R7c), reset, and its write is lost. By
    contract item 2 a node away for less than reap_after loses nothing."""
    config = lives_config(view_size=view_size, reap_after=reap_after)
    s = Story("retired-on-one-word", seed, config, _network())
    _form(s, nodes)
    resets = Resets(s)
    away_node = s.ids[-1]
    s.write("n1", "doomed", "written by n1's first life")
    s.wait_until(s.sim.converged, 10, "every node holds the key")
    s.cut("away", [away_node])
    cut_at = s.sim.now
    s.sim.delete("n1", "doomed")
    s.write(away_node, f"{away_node}-while-away", "only its own")
    s.wait(1)
    s.crash("n1")
    s.restart("n1", keep_state=False, seeds=["n0"])
    s.wait(away - (s.sim.now - cut_at))
    s.heal("away")
    healed = s.sim.now
    took = _agree(s, 30)
    s.wait(5)
    problems = []
    if resets.of(away_node):
        problems.append(f"{away_node}, away for {healed - cut_at:.0f} s (reap_after {reap_after:g} s), "
                        f"was reset at {_times(resets.of(away_node))}")
    if resets.apart_from({away_node}):
        problems.append(f"nodes never away were reset: {resets.words({away_node})}")
    problems.extend(_lost(s))
    back = [n.id for n in s.sim.up_nodes() if _reads(s, n, "doomed")]
    if back:
        problems.append(f"the deleted key 'doomed' reads live on {back}")
    if took is None or not s.sim.converged():
        problems.append("the nodes did not agree within 30 s of the heal")
    _verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets"] = len(resets.seen)
    return report


def restored_pair(seed: int = 1, nodes: int = 5) -> Report:
    """Five nodes. n0 writes a key; every node holds it, and n3 and n4 save their data
    directories. n2 deletes the key; n3 and n4 take the delete and are killed before
    their next save (within the second). n2 then restarts empty, so its first life (the
    delete's writer) has ended; every member's last digest holds that writer to its end,
    so it is retired (R20), and, the grace period past, the delete is collected. n3 and
    n4 are restored from their data, which hold the key and know nothing of n2's first
    life, and meet each other first (cut off from the rest for 3 s as they come up). Each
    asks the other for every retired writer (R19), takes its answer, which lacks that
    writer, and asks no more. Nobody sends that writer again: the deleted key stays live
    on both and the cluster never agrees again. By contract item 3 a node restored from
    data older than a collection is reset (or, item 7, never shows the deleted key)."""
    s = Story("restored-pair", seed, lives_config(), _network())
    _form(s, nodes)
    resets = Resets(s)
    pair = ["n3", "n4"]
    s.write("n0", "doomed", "held by every node, and in every data directory")
    s.wait_until(s.sim.converged, 10, "every node holds the key")
    s.wait(1)
    saved = {node: s.sim.save(node) for node in pair}  # their last saves
    s.sim.delete("n2", "doomed")
    s.wait(0.6)  # exchanges carry the delete, and the pair's digests holding it, everywhere
    for node in pair:
        s.crash(node)  # before their next save: the delete is not in their data
    s.crash("n2")
    s.restart("n2", keep_state=False, seeds=["n0"])
    s.wait(GRACE + 5)  # n2's first life retires, and the delete is collected
    collected_on = [n.id for n in s.sim.up_nodes() if n.protocol.store.get("doomed") is None]
    s.cut("pair", pair)
    for node, other in (("n3", "n4"), ("n4", "n3")):
        s.sim.restart(node, keep_state=True, new_life=True, snapshot=saved[node], seeds=[other])
    s.wait(3)
    s.heal("pair")
    healed = s.sim.now
    watch = DeletedReads(s, ["doomed"], exempt=lambda node: node.id in pair and not resets.of(node.id))
    took = _agree(s, 30)
    s.wait(5)
    problems = []
    final = [n.id for n in s.sim.up_nodes() if _reads(s, n, "doomed")]
    if final:
        problems.append(f"the key 'doomed', deleted by n2's first life and collected on {collected_on}, "
                        f"reads live on {final} {s.sim.now - healed:.0f} s after the restored pair "
                        f"rejoined")
    if watch.back:
        problems.append(f"the deleted key came back: {watch.words()}")
    if took is None or not s.sim.converged():
        problems.append("the nodes never agreed after the restored pair rejoined (30 s)")
    problems.extend(_lost(s))
    _verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of the pair"] = sum(len(resets.of(n)) for n in pair)
    return report


def wedged_past_writer_cap(seed: int = 1, nodes: int = 4, lives: int = 12, cap: int = 8) -> Report:
    """Four nodes; a message may list at most `cap` writers (max_members_per_message; at
    the default of 1,024 the same happens past 1,024 lives). n3 is paused (a stopped
    process, back well within reap_after). Meanwhile n2, a worker recycled again and
    again, restarts empty `lives` times and writes once in each life. No ended life can
    be retired while n3 is away, since every member's last digest must list it (R20), so
    digests grow by a writer a life; past `cap`, every exchange and reply that carries
    one is refused at decode, and gossip stops. When n3 comes back with its state it is
    refused too, so nothing can be retired again, and agreement never returns."""
    config = lives_config(max_members_per_message=cap)
    s = Story("wedged-past-writer-cap", seed, config, _network())
    _form(s, nodes)
    s.write("n0", "before", "every node")
    s.wait_until(s.sim.converged, 10, "every node holds the key")
    s.crash("n3")
    paused = s.sim.now
    for life in range(lives):
        s.crash("n2")
        s.restart("n2", keep_state=False, seeds=["n0"])
        s.wait(0.5)
        s.write("n2", f"life{life}", life)
        s.wait(0.5)
    s.restart("n3", keep_state=True)  # resumed: the same life, its state as it was
    back = s.sim.now
    refused_before = s.sim.traffic.rejected
    s.write("n0", "after", "written once n3 is back")
    took = _agree(s, 30)
    s.wait(5)
    refused_after = s.sim.traffic.rejected - refused_before
    problems = []
    if refused_before:
        problems.append(f"{refused_before} messages were refused at decode while n3 was paused "
                        f"({back - paused:.0f} s, reap_after {REAP:g} s)")
    if refused_after:
        problems.append(f"{refused_after} more in the {s.sim.now - back:.0f} s after it came back")
    marker = "rejected a message: "  # the simulator's trace of each refusal, for the reason
    why = sorted({line.split(marker, 1)[1] for line in s.sim.trace if marker in line})
    if why:
        problems.append(f"refused because: {'; '.join(why[:3])}")
    if took is None or not s.sim.converged():
        problems.append("the nodes never agreed after n3 came back (30 s)")
    missing = s.sim.lost_acks()
    if missing:
        problems.append(f"{len(missing)} times a node lacks an acknowledged write "
                        f"(on {sorted({node for node, _ in missing})})")
    _verdict(s, problems)
    report = s.report(back, took)  # type: ignore[arg-type]
    report.figures["messages refused"] = s.sim.traffic.rejected
    return report


def away_twice_reap(seed: int = 1, nodes: int = 5, away: float = 2 * REAP + 25) -> Report:
    """Five nodes. n1 writes a key; every node holds it. n4 is cut off (paused would be
    the same to the others), and n1 deletes the key; then n1 restarts empty, so the
    delete's writer, n1's first life, has ended. The four others forget n4 after
    reap_after (R18), collect the delete, retire n1's first life (R20), and, reap_after
    later, forget both n4's forgotten life and that retired writer, none of whose entries
    is left. n4 comes back after `away` seconds, more than twice reap_after, with its
    state as it was: nothing is left to judge it by (R7c), so it is not reset, and the
    value it holds, whose delete nobody remembers, spreads back to every node. Contract
    item 3 promises a reset; item 7 that a deleted key never comes back."""
    s = Story("away-twice-reap", seed, lives_config(), _network())
    _form(s, nodes)
    resets = Resets(s)
    away_node = s.ids[-1]
    s.write("n1", "doomed", "written by n1's first life")
    s.wait_until(s.sim.converged, 10, "every node holds the key")
    s.cut("away", [away_node])
    cut_at = s.sim.now
    s.sim.delete("n1", "doomed")
    s.wait(1)
    s.crash("n1")
    s.restart("n1", keep_state=False, seeds=["n0"])
    s.wait(away - (s.sim.now - cut_at))
    early = [n.id for n in s.sim.up_nodes() if n.id != away_node and _reads(s, n, "doomed")]
    watch = DeletedReads(s, ["doomed"], exempt=lambda node: node.id == away_node and not resets.of(away_node))
    s.heal("away")
    healed = s.sim.now
    took = _agree(s, 30)
    s.wait(5)
    problems = []
    if early:
        problems.append(f"the deleted key read live on {early} before {away_node} came back")
    if watch.back:
        problems.append(f"the key 'doomed', deleted {s.sim.now - cut_at:.0f} s before, came back after "
                        f"{away_node} returned from {healed - cut_at:.0f} s away (reap_after {REAP:g} s): "
                        f"{watch.words()}")
    if _reads(s, s.sim.nodes[away_node], "doomed"):
        problems.append(f"{away_node} still reads it {s.sim.now - healed:.0f} s after its return "
                        f"(reset {len(resets.of(away_node))} times)")
    if resets.apart_from({away_node}):
        problems.append(f"nodes never away were reset: {resets.words({away_node})}")
    if took is None or not s.sim.converged():
        problems.append("the nodes did not agree within 30 s of the return")
    _verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of n4"] = len(resets.of(away_node))
    return report


def reset_pair_cold_start(seed: int = 1, nodes: int = 5, recut: float = 3.0) -> Report:
    """Five nodes, routine traffic (writes and deletes) on n0..n2. n3 and n4 are cut off
    together for reap_after + 15 s: the majority forgets them and collects deletes they
    never saw, so on the heal both are rightly reset (contract item 3) and catch up
    (R7d). Right after both are reset the two are cut off again for `recut` seconds (a
    link that flaps): their sources stop answering and each catches up from whoever
    answers, which is the other one, reset at the same moment and holding nothing. The
    exception for a cluster starting cold (R7d: neither has collected or retired
    anything) lets one complete its catch-up with nothing from the other, still catching
    up; the other then completes from it. A client waiting for a node to have caught up
    writes to it at once. Once the link is back, the first node they meet finds them
    behind and resets them again, and that write is lost. (At seed 1, n4 had taken its
    source's horizon, with no data, from an exchange before the flap: no evidence holds
    against it any more, its peers find it behind and send it nothing, and it keeps
    none of the cluster's keys for good.) A node that has caught up holds the cluster's
    old keys; a node forgotten once is reset once; a write taken after a catch-up is
    kept."""
    s = Story("reset-pair-cold-start", seed, lives_config(), _network())
    _form(s, nodes)
    resets = Resets(s)
    old = [f"old{i}" for i in range(10)]
    for i, key in enumerate(old):
        s.write(f"n{i % nodes}", key, i)
    s.wait_until(s.sim.converged, 10, "every node holds the old keys")
    catch_ups = CatchUps(s, old)
    pair = ["n3", "n4"]
    cut_for = REAP + 15
    traffic_until = s.sim.now + cut_for + 20
    _churn(s, s.ids[:3], traffic_until)
    s.wait(1)
    s.cut("pair", pair)
    s.wait(cut_for)
    s.heal("pair")
    healed = s.sim.now
    flapped: list[float] = []
    ready: set[str] = set()

    def flap(node: SimNode) -> None:
        if not flapped and all(resets.of(n) for n in pair):
            flapped.append(s.sim.now)
            s.cut("pair-again", pair)
            s.sim.after(recut, lambda: s.heal("pair-again"))

    def client(node: SimNode) -> None:  # the first write to each reset node, once it has caught up
        caught_up = resets.of(node.id) and not node.protocol.bootstrapping
        if node.id in pair and node.id not in ready and caught_up:
            ready.add(node.id)
            s.sim.after(0.0, lambda: s.write(node.id, f"{node.id}-caught-up", "taken once caught up"))

    s.sim.watchers.extend([flap, client])
    s.wait(traffic_until - s.sim.now)
    took = _agree(s, 30)
    problems = []
    for at, node, held in catch_ups.short():
        problems.append(f"{node} finished catching up at {at:.2f} s reading {held} of the {len(old)} keys "
                        f"every node had held since before the cut")
    for node in pair:
        if len(resets.of(node)) > 1:
            problems.append(f"{node}, forgotten once, was reset {len(resets.of(node))} times: at "
                            f"{_times(resets.of(node))}")
    if resets.apart_from(set(pair)):
        problems.append(f"nodes never away were reset: {resets.words(set(pair))}")
    problems.extend(_lost(s))
    if took is None:
        problems.append("the nodes did not agree within 30 s of the end of the traffic")
    _verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of the pair"] = sum(len(resets.of(n)) for n in pair)
    return report


# Each at the seed it is told at (the defaults above).
LIVES: dict[str, Callable[..., Report]] = {
    "majority-node-reset-after-heal": majority_node_reset_after_heal,
    "endless-catch-up": endless_catch_up,
    "retired-on-one-word": retired_on_one_word,
    "restored-pair": restored_pair,
    "wedged-past-writer-cap": wedged_past_writer_cap,
    "away-twice-reap": away_twice_reap,
    "reset-pair-cold-start": reset_pair_cold_start,
}


def main(argv: list[str] | None = None) -> int:
    """Run the stories named (default: all) and print each report, or what went wrong."""
    names = (sys.argv[1:] if argv is None else argv) or list(LIVES)
    unknown = [n for n in names if n not in LIVES]
    if unknown:
        print(f"unknown {unknown}; choose from {', '.join(LIVES)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            print("\n".join(LIVES[name]().lines()))
        except ScenarioFailed as exc:
            failed += 1
            print(str(exc).split("\ntrace:")[0])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
