"""The checker's ledger: what a run may lose by the contract (docs/PROTOCOL.md, "What can
be lost, and when"), and what it found wrong.

It keeps the acknowledged operations and which of them only a discarded state held (so
may be lost: `losable`), what each life of each node has held, and which lives were
forgotten by some node, started from a snapshot, reset, caught up from another life or
renamed. It watches every node after each event (`watch`, one of Simulation.watchers): a
node that reads an older entry for a key after a newer one, within one life, is a
violation ("went back"). Whoever stops, restarts or recycles a node tells it
(`discarded`, `dropped`, `restore`, `started`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gossip.store import Entry
from simulations.acks import holds
from simulations.check_schedule import KEYS
from simulations.engine import Simulation
from simulations.simnode import SimNode

Life = tuple[str, int]  # (node id, generation)


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str


def show(e: Entry) -> str:
    what = "delete" if e.deleted else f"={e.value!r}"
    ttl = "" if e.expires_at is None else f" expires {e.expires_at}"
    return f"{e.key}{what} @{e.ts.wall}.{e.ts.counter} by {e.origin}{ttl}"


class Ledger:
    """The bookkeeping of one run over `sim`, and the violations found in it."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.ops: list[Entry] = []
        self.losable: set[int] = set()  # indexes into ops
        self.restored: set[Life] = set()  # lives started from a snapshot
        self.sources: dict[Life, Life] = {}  # life -> the life it caught up from
        self.renamed: dict[Life, Life] = {}  # life -> the life it outlived, its state
        # (when, node, the snapshot's time, its latest snapshot's time) of each restore
        self.restores: list[tuple[float, str, float, float]] = []
        self.reaped: set[Life] = set()  # lives some node forgot
        self.reset_lives: list[Life] = []  # each life that reset
        self.reset_why: dict[Life, str] = {}  # the evidence each was reset on
        self.reborn: set[Life] = set()  # lives a reset started
        self.lives: list[tuple[str, int, int]] = []  # (node, generation, clock offset ms) of each start
        self.violations: list[Violation] = []
        self.gone: set[str] = set()  # nodes recycled away: never back, their state lost
        self.keys: list[str] = list(KEYS)  # and the windowed-counter slots written so far
        self.clock_high = 0  # the furthest any node's clock has read, ms
        self._shadow: dict[str, dict[str, Entry | None]] = {}
        self._resets: dict[str, tuple[int, int]] = {}  # node -> (resets, dropped_unvouched) seen
        self._life: dict[str, int] = {}  # node -> the generation last seen
        self._seen: dict[Life, dict[str, Entry]] = {}  # life -> newest per key

    def violate(self, kind: str, detail: str) -> None:
        if Violation(kind, detail) in self.violations:
            return  # (seen again at the next event)
        if len(self.violations) < 20:
            self.violations.append(Violation(kind, detail))
        self.sim.note(f"VIOLATION {kind}: {detail}")

    def acknowledge(self, op: Entry) -> None:
        """A client saw `op` acknowledged."""
        self.ops.append(op)

    def track(self, key: str) -> None:
        """Keep the entries of `key` too (a windowed counter's slot)."""
        if key not in self.keys:
            self.keys.append(key)

    # -- what nodes hold ------------------------------------------------------------------

    def entries(self, node: SimNode) -> dict[str, Entry | None]:
        store = node.protocol.store
        return {key: store.get(key) for key in self.keys}

    def held(self, node: SimNode) -> dict[str, Entry]:
        """The newest entry per key the node's current life has held."""
        return self._seen.get((node.id, node.protocol.membership.me.generation), {})

    def _reflects(self, node: SimNode, op: Entry) -> bool:
        """Whether the node's state holds `op` or something that beats it, or held such
        an entry in this life and has collected it since (a delete, an expired write)."""
        entry = node.protocol.store.get(op.key)
        if entry is not None:
            return holds(entry, op)
        return holds(self.held(node).get(op.key), op)

    def discarded(self, before: dict[str, Entry | None], seen: dict[str, Entry]) -> None:
        """A node's state `before` (with `seen`, the newest entries that life held) was
        just dropped: operations it alone held, beat or had collected may be lost now.
        (Down nodes still hold their state; gone ones do not.) Nothing else is excused:
        not a write taken by a node whose clock ran beyond max_offset, nor one taken by a
        node born under such a clock."""
        holders = [n for n in self.sim.nodes.values() if n.id not in self.gone]
        for i, op in enumerate(self.ops):
            if i in self.losable:
                continue
            entry = before.get(op.key)
            if not (holds(entry, op) or (entry is None and holds(seen.get(op.key), op))):
                continue
            if not any(self._reflects(n, op) for n in holders):
                self.losable.add(i)

    def dropped(self, node: SimNode) -> None:
        """The node's state is about to be replaced or dropped: account for what it held."""
        self.discarded(self.entries(node), self.held(node))

    # -- lives ----------------------------------------------------------------------------

    def watch(self, node: SimNode) -> None:
        p = node.protocol
        self.clock_high = max(self.clock_high, self.sim.node_ms(node))
        counts = (p.stats.resets, p.stats.dropped_unvouched)
        seen = self._resets.get(node.id, (0, 0))
        if counts != seen:  # part of its state dropped: may read older now
            if counts[0] > seen[0]:
                self._reset(node)
            self._resets[node.id] = counts
            old = (node.id, self._life.get(node.id, p.membership.me.generation))
            self.discarded(self._shadow.get(node.id, {}), self._seen.pop(old, {}))
        for member_id, forgotten in p.lives.forgotten.items():
            self.reaped.add((member_id, forgotten.generation))
        life = (node.id, p.membership.me.generation)
        before = self._life.get(node.id, life[1])
        if before != life[1] and counts == seen:
            # A life that heard of a newer generation of its own starts one above it,
            # keeping its state (R16): the same state under a new name, with its fate.
            self.renamed[life] = (node.id, before)
            self._seen[life] = self._seen.pop((node.id, before), {})
        if p.caught_up_from is not None:
            self.sources[life] = p.caught_up_from
        self._life[node.id] = life[1]
        newest = self._seen.setdefault(life, {})
        current = self.entries(node)
        now = self.sim.node_ms(node)
        for key, entry in current.items():
            if entry is None:
                continue
            held = newest.get(key)
            # An older entry after a newer one, unless both read as absent (a delete taken
            # behind a collected one: nothing reads differently, contract 7).
            if held is not None and held.wins_over(entry) and (held.is_live(now) or entry.is_live(now)):
                self.violate("went back", f"{node.id} held {show(held)} for {key}, now {show(entry)}")
            if held is None or entry.wins_over(held):
                newest[key] = entry
        self._shadow[node.id] = current

    def _reset(self, node: SimNode) -> None:
        p = node.protocol
        life = (node.id, self._life.get(node.id, p.membership.me.generation))
        self.reset_lives.append(life)
        self.reborn.add((node.id, p.membership.me.generation))
        notice = getattr(p, "last_reset", None)  # the core's word on why, if it says
        why, peer = getattr(notice, "evidence", None), getattr(notice, "peer", "")
        text = "?" if why is None else f"{why.reason} {why.writer} {tuple(why.mark)} by {peer}"
        self.reset_why[life] = text
        self.sim.note(f"reset {node.id}#{life[1]}: {self.reset_why[life]}")

    def restore(self, node: SimNode, taken: float, latest: float) -> None:
        """The node's new life started from its snapshot of `taken` seconds (its latest
        being of `latest`)."""
        self.restores.append((self.sim.now, node.id, taken, latest))
        self.restored.add((node.id, node.protocol.membership.me.generation))

    def started(self, node: SimNode) -> None:
        """A node (re)started: its state and counters are those of its new life."""
        p = node.protocol
        self._shadow[node.id] = self.entries(node)
        self._resets[node.id] = (p.stats.resets, p.stats.dropped_unvouched)
        self._life[node.id] = p.membership.me.generation
        self.lives.append((node.id, p.membership.me.generation, node.offset_ms))
