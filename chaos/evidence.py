"""Evidence that a node may have lost acknowledged writes, as the contract allows
(docs/PROTOCOL.md, "What can be lost, and when"), and the window of writes each piece of
evidence excuses.

A write lives on the node that took it until a push (milliseconds) or an exchange (one
interval) carries it to another node. So a node's kill -9 loses its writes only in a
window before the kill:

- the write could not have left yet: it was acknowledged after the last moment from which
  the node had `Setup.spread` seconds (request timeout + the longest round interval) in
  a row of reaching another host. A node *away* cannot pass it on: its host cut off from
  every other host (partitions, one-way drops, whose TCP needs both ways, packet loss on
  either end, its clock ahead of the others' beyond max_offset until the others' clocks
  catch up with the timestamps it wrote), or the node itself stopped, paused or
  restarting (`RESTART` seconds after each restart step). A node away keeps its writes to
  itself for as long as it is away;
- and, for a kill that kept the data directory, the write is missing from the snapshot:
  acknowledged within `Setup.unsaved` seconds (the snapshot period and the time a save
  takes) of the kill. A wipe loses the snapshot too.

The window errs on the lenient side twice. A host's two nodes talk over the loopback,
which no fault touches, so a write taken on an isolated host also lives on the other node
of that host; the window does not ask whether that one lost its state too. And packet
loss counts as a cut, though TCP gets most requests through it, only later. (A clock
behind the others' is no cut: they take what it sends, it refuses what they send.)

A node that logged a reset (R7c) lost the writes only it held, whenever it took them: its
evidence has no window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos.faults import Fault
from chaos.ops import Op
from chaos.setup import Setup

RESTART = 3.0  # seconds a restarted node may take to run and reach its peers (a clean stop included)
Span = tuple[float, float]


@dataclass(frozen=True)
class Evidence:
    """Why `node` may have lost writes: `what` happened, and it excuses the losses of the
    acknowledged operations the node took that ended in (since, until]; with no window,
    all of them."""

    node: str
    what: str
    since: float | None = None
    until: float | None = None

    def excuses(self, op: Op) -> bool:
        if self.node not in (op.node, op.writer):
            return False
        if self.since is None or self.until is None:
            return True
        return self.since < op.end <= self.until

    def describe(self) -> str:
        if self.since is None or self.until is None:
            return f"{self.node}: {self.what}"
        since = "the start" if self.since == float("-inf") else f"{self.since:.2f} s"
        return f"{self.node}: {self.what} (its writes acknowledged from {since} to {self.until:.2f} s)"


def separated(f: Fault, a: int, b: int, setup: Setup) -> Span | None:
    """The span in which the fault keeps hosts `a` and `b` from passing writes to each
    other (either way), if it does."""
    if f.kind in ("halves", "isolate", "bridge"):
        one, two = f.sides[0], f.sides[1]
        if (a in one and b in two) or (a in two and b in one):
            return (f.start, f.end)
    elif f.kind == "one_way":
        if {a, b} == {f.sides[0][0], f.sides[1][0]}:
            return (f.start, f.end)
    elif f.kind == "loss":
        if f.sides[0][0] in (a, b):
            return (f.start, f.end)
    elif f.kind == "skew" and f.amount > setup.max_offset and f.sides[0][0] in (a, b):
        # Its timestamps run `amount` ahead and are refused beyond max_offset; after the
        # skew the node restarts from its data, clock high-water mark included, so what it
        # wrote stays refused until the others' clocks reach it.
        return (f.start, f.end + f.amount - setup.max_offset)
    return None


def down(f: Fault, node: str, setup: Setup) -> list[Span]:
    """Spans in which the fault has the node stopped, paused or restarting."""
    if f.kind in ("kill", "kill_wipe") and f.node == node:
        return [(f.start, f.end + RESTART)]
    if f.kind == "pause" and f.node == node:
        return [(f.start, f.end)]
    if f.kind == "skew" and setup.host_of(node) == f.sides[0][0]:
        return [(f.start, f.start + RESTART), (f.end, f.end + RESTART)]
    return []


def away(node: str, plan: Sequence[Fault], setup: Setup) -> list[Span]:
    """The spans in which the node could pass its writes to no other host, merged."""
    spans = [span for f in plan for span in down(f, node, setup)]
    host = setup.host_of(node)
    others = [h for h in range(1, setup.hosts + 1) if h != host]
    if others:
        cuts = {h: [s for f in plan if (s := separated(f, host, h, setup)) is not None] for h in others}
        # Cut off from every other host: where the cuts from each one overlap.
        common = _merge(cuts[others[0]])
        for h in others[1:]:
            common = _intersect(common, _merge(cuts[h]))
        spans += common
    return _merge(spans)


def window(node: str, at: float, wiped: bool, plan: Sequence[Fault], setup: Setup) -> Span:
    """The acknowledgment times (since, at] of the node's writes that its kill -9 at `at`
    may have lost (see the module docstring)."""
    need = setup.spread
    since = float("-inf")
    end = at  # walk back through the spans in which the node was present
    for lo, hi in reversed([s for s in away(node, plan, setup) if s[0] < at]):
        if end - hi >= need:
            since = end - need
            break
        end = lo
    else:
        since = end - need  # present all the time before its first absence
    if not wiped:
        since = max(since, at - setup.unsaved)
    return (since, at)


def kill_evidence(kills: Iterable[tuple[str, float, bool]], plan: Sequence[Fault], setup: Setup,
                  ops: Sequence[Op]) -> list[Evidence]:
    """One piece of evidence per kill -9 (node, run time, data wiped), with its window;
    a kill that kept the data only if it falls on acknowledged writes of that node."""
    found = []
    for node, at, wiped in kills:
        since, until = window(node, at, wiped, plan, setup)
        what = f"killed -9 at {at:.2f} s, " + ("its data directory wiped" if wiped else "with its data")
        evidence = Evidence(node, what, since, until)
        took = [op for op in ops if op.kind != "read" and op.outcome == "ok" and evidence.excuses(op)]
        if wiped or took:
            found.append(evidence)
    return found


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    found = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo < hi:
                found.append((lo, hi))
    return _merge(found)
