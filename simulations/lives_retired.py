"""Stories of node lives (simulations/lives.py) in which ended writers are retired (R20):
a newcomer catching up after a rolling restart (R7d, R9), a writer retired on a
partial view, a restored pair asking each other for retired writers (R19), digests
past the writer cap."""

from __future__ import annotations

from simulations.lives_watch import (
    GRACE,
    INTERVAL,
    REAP,
    DeletedReads,
    Resets,
    agree,
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
    s = Story("endless-catch-up", seed, config, lives_network())
    form_cluster(s, 3)
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
    if agree(s, 10) is None:
        problems.append("the nodes did not agree within 10 s after that")
    verdict(s, problems)
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
    s = Story("retired-on-one-word", seed, config, lives_network())
    form_cluster(s, nodes)
    resets = Resets(s)
    away_node = s.ids[-1]
    cut_at = delete_while_away(s, away_node)
    s.write(away_node, f"{away_node}-while-away", "only its own")
    s.wait(1)
    s.crash("n1")
    s.restart("n1", keep_state=False, seeds=["n0"])
    s.wait(away - (s.sim.now - cut_at))
    s.heal("away")
    healed = s.sim.now
    took = agree(s, 30)
    s.wait(5)
    problems = []
    if resets.of(away_node):
        problems.append(f"{away_node}, away for {healed - cut_at:.0f} s (reap_after {reap_after:g} s), "
                        f"was reset at {times_in_words(resets.of(away_node))}")
    if resets.apart_from({away_node}):
        problems.append(f"nodes never away were reset: {resets.words({away_node})}")
    problems.extend(lost_in_words(s))
    back = [n.id for n in s.sim.up_nodes() if reads(s, n, "doomed")]
    if back:
        problems.append(f"the deleted key 'doomed' reads live on {back}")
    if took is None or not s.sim.converged():
        problems.append("the nodes did not agree within 30 s of the heal")
    verdict(s, problems)
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
    s = Story("restored-pair", seed, lives_config(), lives_network())
    form_cluster(s, nodes)
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
    took = agree(s, 30)
    s.wait(5)
    problems = []
    final = [n.id for n in s.sim.up_nodes() if reads(s, n, "doomed")]
    if final:
        problems.append(f"the key 'doomed', deleted by n2's first life and collected on {collected_on}, "
                        f"reads live on {final} {s.sim.now - healed:.0f} s after the restored pair "
                        f"rejoined")
    if watch.back:
        problems.append(f"the deleted key came back: {watch.words()}")
    if took is None or not s.sim.converged():
        problems.append("the nodes never agreed after the restored pair rejoined (30 s)")
    problems.extend(lost_in_words(s))
    verdict(s, problems)
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
    s = Story("wedged-past-writer-cap", seed, config, lives_network())
    form_cluster(s, nodes)
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
    took = agree(s, 30)
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
    verdict(s, problems)
    report = s.report(back, took)  # type: ignore[arg-type]
    report.figures["messages refused"] = s.sim.traffic.rejected
    return report
