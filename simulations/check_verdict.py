"""The checker's verdict once a run has healed and its nodes agree: what a node reads
for each key against the acknowledged operations the contract does not let go, and each
reset against the causes the contract names (docs/PROTOCOL.md, "What can be lost, and
when"). Violations go into the ledger (simulations/check_ledger.py).
"""

from __future__ import annotations

from simulations.check_ledger import Ledger, show


def judge_reads(ledger: Ledger) -> None:
    """Each key reads as the last-writer-wins maximum of the acknowledged operations on
    it, but those the contract lets go."""
    sim = ledger.sim
    node = sim.up_nodes()[0]
    now = sim.node_ms(node)
    keys = {op.key for op in ledger.ops}
    for key in sorted(keys):
        ops = [op for op in ledger.ops if op.key == key]
        safe = [op for i, op in enumerate(ledger.ops) if op.key == key and i not in ledger.losable]
        final = node.protocol.read(key, now)
        best = max(safe, key=lambda e: (e.ts, e.origin)) if safe else None
        if final is not None:
            if final not in ops:
                ledger.violate("unknown value", f"{key} reads {show(final)}, never acknowledged")
            elif best is not None and best.wins_over(final):
                what = "deleted key back" if not best.is_live(now) else "acknowledged write lost"
                ledger.violate(what, f"{key} reads {show(final)}; {show(best)} was acknowledged")
        elif best is not None and best.is_live(now):
            removed = any(op == best or op.wins_over(best) for op in ops if not op.is_live(now))
            # A TTL write some node's clock saw expire (a clock ahead, put right since)
            # read as absent there and may have been collected (R7, R7e).
            expired = best.expires_at is not None and best.expires_at <= ledger.clock_high
            if not (removed or expired):
                ledger.violate("acknowledged write lost", f"{key} is absent; {show(best)} acknowledged")


def judge_resets(ledger: Ledger) -> None:
    """Only a life some node forgot, or one whose state came from a snapshot (its own,
    or that of the node it caught up from), or one that caught up from such a life,
    may be reset (contract, 3); never one merely skewed, paused, cut off or restarted
    empty."""
    excused = ledger.reaped | ledger.restored
    while True:  # a life that caught up from an excused one, or renamed it, shares its state and fate
        more = {life for links in (ledger.sources, ledger.renamed) for life, source in links.items()
                if source in excused} - excused
        if not more:
            break
        excused |= more
    uncaused = [life for life in ledger.reset_lives if life not in excused]
    if uncaused:
        shown = "; ".join(f"{n}#{g} ({ledger.reset_why.get((n, g), '?')})" for n, g in uncaused[:3])
        ledger.violate("reset without cause", f"{len(uncaused)} resets of lives neither forgotten nor "
                       f"restored from a snapshot: {shown}")
    resets, causes = len(ledger.reset_lives), len(ledger.reaped) + len(ledger.restored)
    if resets > 2 * len(ledger.sim.nodes) * max(1, causes):
        ledger.violate("reset storm", f"{resets} resets for {causes} causes")
