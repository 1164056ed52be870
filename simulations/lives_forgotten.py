"""Stories of node lives (simulations/lives.py) in which members are forgotten (R18) and
reset (R7c), and catch up again (R7d): a node cut off past reap_after, one away for
more than twice that, a pair reset together."""

from __future__ import annotations

from simulations.lives_watch import (
    REAP,
    CatchUps,
    DeletedReads,
    Resets,
    agree,
    churn,
    delete_while_away,
    form_cluster,
    lives_config,
    lives_network,
    lost_in_words,
    reads,
    times_in_words,
    verdict,
)
from simulations.scenarios import Report, Story
from simulations.simnode import SimNode


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
    s = Story("majority-node-reset-after-heal", seed, lives_config(view_size=view_size), lives_network())
    form_cluster(s, nodes)
    resets = Resets(s)
    cut_for = REAP + 15
    traffic_until = s.sim.now + cut_for + 20
    churn(s, s.ids[1:], traffic_until)
    s.wait(2)
    s.cut("n0-away", ["n0"])
    s.wait(cut_for)
    s.heal("n0-away")
    healed = s.sim.now
    s.wait(traffic_until - s.sim.now)
    took = agree(s, 30)
    problems = []
    if resets.apart_from({"n0"}):
        problems.append(f"nodes never cut off, forgotten or restored were reset after n0's heal at "
                        f"{healed:.2f} s: {resets.words({'n0'})}")
    if took is None:
        problems.append("the nodes did not agree within 30 s of the end of the traffic")
    problems.extend(lost_in_words(s))
    verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of n0"] = len(resets.of("n0"))
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
    s = Story("away-twice-reap", seed, lives_config(), lives_network())
    form_cluster(s, nodes)
    resets = Resets(s)
    away_node = s.ids[-1]
    cut_at = delete_while_away(s, away_node)
    s.wait(1)
    s.crash("n1")
    s.restart("n1", keep_state=False, seeds=["n0"])
    s.wait(away - (s.sim.now - cut_at))
    early = [n.id for n in s.sim.up_nodes() if n.id != away_node and reads(s, n, "doomed")]
    watch = DeletedReads(s, ["doomed"], exempt=lambda node: node.id == away_node and not resets.of(away_node))
    s.heal("away")
    healed = s.sim.now
    took = agree(s, 30)
    s.wait(5)
    problems = []
    if early:
        problems.append(f"the deleted key read live on {early} before {away_node} came back")
    if watch.back:
        problems.append(f"the key 'doomed', deleted {s.sim.now - cut_at:.0f} s before, came back after "
                        f"{away_node} returned from {healed - cut_at:.0f} s away (reap_after {REAP:g} s): "
                        f"{watch.words()}")
    if reads(s, s.sim.nodes[away_node], "doomed"):
        problems.append(f"{away_node} still reads it {s.sim.now - healed:.0f} s after its return "
                        f"(reset {len(resets.of(away_node))} times)")
    if resets.apart_from({away_node}):
        problems.append(f"nodes never away were reset: {resets.words({away_node})}")
    if took is None or not s.sim.converged():
        problems.append("the nodes did not agree within 30 s of the return")
    verdict(s, problems)
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
    s = Story("reset-pair-cold-start", seed, lives_config(), lives_network())
    form_cluster(s, nodes)
    resets = Resets(s)
    old = [f"old{i}" for i in range(10)]
    for i, key in enumerate(old):
        s.write(f"n{i % nodes}", key, i)
    s.wait_until(s.sim.converged, 10, "every node holds the old keys")
    catch_ups = CatchUps(s, old)
    pair = ["n3", "n4"]
    cut_for = REAP + 15
    traffic_until = s.sim.now + cut_for + 20
    churn(s, s.ids[:3], traffic_until)
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
    took = agree(s, 30)
    problems = []
    for at, node, held in catch_ups.short():
        problems.append(f"{node} finished catching up at {at:.2f} s reading {held} of the {len(old)} keys "
                        f"every node had held since before the cut")
    for node in pair:
        if len(resets.of(node)) > 1:
            problems.append(f"{node}, forgotten once, was reset {len(resets.of(node))} times: at "
                            f"{times_in_words(resets.of(node))}")
    if resets.apart_from(set(pair)):
        problems.append(f"nodes never away were reset: {resets.words(set(pair))}")
    problems.extend(lost_in_words(s))
    if took is None:
        problems.append("the nodes did not agree within 30 s of the end of the traffic")
    verdict(s, problems)
    report = s.report(healed, took)  # type: ignore[arg-type]
    report.figures["resets of the pair"] = sum(len(resets.of(n)) for n in pair)
    return report
