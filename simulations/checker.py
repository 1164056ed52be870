"""A randomized checker of the core under faults, in virtual time.

Each seed draws a schedule (simulations/check_schedule.py: a cluster, a stream of
writes and deletes, and faults of the network, of processes, of clocks and of whole
lives), which is played against a simulation. Then it heals everything and checks
what docs/PROTOCOL.md promises:

- every live node agrees, within a bounded time (nodes that joined under new ids too);
- each key reads as the last-writer-wins maximum of the acknowledged operations on it,
  except operations the contract lets go (those only a discarded state held: a node
  restarted without its data, or from a snapshot older than the operation, recycled away,
  or reset). A write taken by a node whose clock was off, even beyond `max_offset`, is
  not excused;
- no node ever reads an older entry for a key after holding a newer one (so no deleted
  key comes back), within one life of that node;
- no life of a node is reset unless some node forgot that life or it started from a
  snapshot (not for a skewed clock, a pause, a cut, an empty restart or a neighbour's
  restore);
- nothing raises but a peer's error.

A failing schedule shrinks (steps are removed while the same kind of violation stays;
each step stands alone, so a start without its end still runs) and prints as JSON,
which `gossip-sim check --replay FILE` runs again.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from gossip.config import Config
from gossip.counters import window_expiry, window_of, window_slot
from gossip.store import Entry
from simulations.check_schedule import KEYS, MAX_DURATION, Schedule, Step, generate
from simulations.engine import SimNode, Simulation, to_us
from simulations.network import NetworkModel

WINDOW_MS = 2000  # the windowed counters' window
SAVE_EVERY = 1.0  # virtual seconds between data-dir snapshots, as node/ does
SETTLE = 2.0  # virtual seconds the agreement must hold

Save = tuple[float, bytes]  # (virtual seconds, a data-dir snapshot taken then)


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str


@dataclass
class Outcome:
    schedule: Schedule
    violations: list[Violation] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _holds(entry: Entry | None, op: Entry) -> bool:
    """Whether a node holding `entry` for the key holds `op` or something that beats it."""
    return entry is not None and (entry == op or entry.wins_over(op))


class Run:
    """One schedule played against a simulation, with the bookkeeping of what the
    contract allows: acknowledged operations, which of them only a discarded state held,
    and what each node life has held.

    A step names a node by its worker slot (n0, n1, ...): once a slot's worker was
    recycled under a new id, its steps go to that id. A node recycled away is gone: it
    never comes back, and what it alone held may be lost."""

    def __init__(self, schedule: Schedule, trace: bool = False) -> None:
        self.schedule = schedule
        config = Config(**schedule.config)
        self.sim = Simulation(config, NetworkModel(**schedule.network), schedule.seed, trace=trace)
        self.ops: list[Entry] = []
        self.losable: set[int] = set()  # indexes into ops
        self.saves: dict[str, list[Save]] = {}
        self.restored: set[tuple[str, int]] = set()  # lives started from a snapshot
        self.sources: dict[tuple[str, int], tuple[str, int]] = {}  # life -> the life it caught up from
        self.renamed: dict[tuple[str, int], tuple[str, int]] = {}  # life -> the life it outlived, its state
        # (when, node, the snapshot's time, its latest snapshot's time) of each restore
        self.restores: list[tuple[float, str, float, float]] = []
        self.reaped: set[tuple[str, int]] = set()  # lives some node forgot
        self.reset_lives: list[tuple[str, int]] = []  # (node, generation) of each life that reset
        self.reset_why: dict[tuple[str, int], str] = {}  # the evidence each was reset on
        self.reborn: set[tuple[str, int]] = set()  # lives a reset started
        self.lives: list[tuple[str, int, int]] = []  # (node, generation, clock offset ms) of each start
        self.violations: list[Violation] = []
        self._shadow: dict[str, dict[str, Entry | None]] = {}
        self._resets: dict[str, tuple[int, int]] = {}  # node -> (resets, dropped_unvouched) seen
        self._life: dict[str, int] = {}  # node -> the generation last seen
        self._seen: dict[tuple[str, int], dict[str, Entry]] = {}  # (node, generation) -> newest per key
        self._down: dict[str, str] = {}  # how each stopped node stopped: crash, pause or leave
        self._slot: dict[str, str] = {}  # worker slot -> its current node id, once recycled
        self.gone: set[str] = set()  # nodes recycled away: never back
        self.healed = False
        self._keys: list[str] = list(KEYS)  # and the windowed-counter slots written so far
        self.clock_high = 0  # the furthest any node's clock has read, ms
        self.sim.watchers.append(self._watch)

    @property
    def ids(self) -> list[str]:
        return [i for i in self.sim.nodes if i not in self.gone]

    def current(self, slot: str) -> str:
        return self._slot.get(slot, slot)

    # -- the contract's bookkeeping ---------------------------------------------------

    def _entries(self, node: SimNode) -> dict[str, Entry | None]:
        store = node.protocol.store
        return {key: store.get(key) for key in self._keys}

    def _held(self, node: SimNode) -> dict[str, Entry]:
        """The newest entry per key the node's current life has held."""
        return self._seen.get((node.id, node.protocol.membership.me.generation), {})

    def _reflects(self, node: SimNode, op: Entry) -> bool:
        """Whether the node's state holds `op` or something that beats it, or held such
        an entry in this life and has collected it since (a delete, an expired write)."""
        entry = node.protocol.store.get(op.key)
        if entry is not None:
            return _holds(entry, op)
        return _holds(self._held(node).get(op.key), op)

    def _discarded(self, before: dict[str, Entry | None], seen: dict[str, Entry]) -> None:
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
            if not (_holds(entry, op) or (entry is None and _holds(seen.get(op.key), op))):
                continue
            if not any(self._reflects(n, op) for n in holders):
                self.losable.add(i)

    def _dropped(self, node: SimNode) -> None:
        """The node's state is about to be replaced or dropped: account for what it held."""
        self._discarded(self._entries(node), self._held(node))

    def _watch(self, node: SimNode) -> None:
        p = node.protocol
        self.clock_high = max(self.clock_high, self.sim.node_ms(node))
        counts = (p.stats.resets, p.stats.dropped_unvouched)
        seen = self._resets.get(node.id, (0, 0))
        if counts != seen:  # part of its state dropped: may read older now
            if counts[0] > seen[0]:
                self._reset(node)
            self._resets[node.id] = counts
            old = (node.id, self._life.get(node.id, p.membership.me.generation))
            self._discarded(self._shadow.get(node.id, {}), self._seen.pop(old, {}))
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
        current = self._entries(node)
        now = self.sim.node_ms(node)
        for key, entry in current.items():
            if entry is None:
                continue
            held = newest.get(key)
            # An older entry after a newer one, unless both read as absent (a delete taken
            # behind a collected one: nothing reads differently, contract 7).
            if held is not None and held.wins_over(entry) and (held.is_live(now) or entry.is_live(now)):
                self.violate("went back", f"{node.id} held {_show(held)} for {key}, now {_show(entry)}")
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

    def _started(self, node: SimNode) -> None:
        """A node (re)started: its state and counters are those of its new life."""
        p = node.protocol
        self._shadow[node.id] = self._entries(node)
        self._resets[node.id] = (p.stats.resets, p.stats.dropped_unvouched)
        self._life[node.id] = p.membership.me.generation
        self._down.pop(node.id, None)
        self.lives.append((node.id, p.membership.me.generation, node.offset_ms))

    def violate(self, kind: str, detail: str) -> None:
        if Violation(kind, detail) in self.violations:
            return  # (seen again at the next event)
        if len(self.violations) < 20:
            self.violations.append(Violation(kind, detail))
        self.sim.note(f"VIOLATION {kind}: {detail}")

    # -- steps ------------------------------------------------------------------------------

    def _up(self, node_id: str) -> SimNode | None:
        node = self.sim.nodes.get(self.current(node_id))
        return node if node is not None and node.up else None

    def _group(self, slots: Iterable[str]) -> list[str]:
        return sorted({self.current(s) for s in slots})

    def apply(self, step: Step) -> None:
        a, sim = step.args, self.sim
        kind = step.kind
        if kind == "window":
            node = self._up(a["node"])
            if node is None or node.protocol.membership.me.left:
                return
            now = sim.node_ms(node)
            window = window_of(now, WINDOW_MS)
            slot = window_slot(a["key"], WINDOW_MS, window, node.protocol.writer)
            ttl = (window_expiry(WINDOW_MS, window) - now) / 1000
            if slot not in self._keys:
                self._keys.append(slot)
            self.ops.append(sim.write(node.id, slot, a["value"], ttl))
        elif kind in ("write", "delete"):
            node = self._up(a["node"])
            if node is None or node.protocol.membership.me.left:
                return
            if kind == "write":
                entry = sim.write(node.id, a["key"], a["value"], a.get("ttl"))
            else:
                entry = sim.delete(node.id, a["key"])
            self.ops.append(entry)
        elif kind == "cut":
            sim.cut(a["name"], self._group(a["group"]))
        elif kind == "block":
            sim.block(a["name"], self._group(a["src"]), self._group(a["dst"]))
        elif kind == "heal":
            sim.heal(a["name"])
        elif kind == "loss":
            sim.net.model = dataclasses.replace(sim.net.model, loss=a["p"])
            sim.note(f"loss {a['p']}")
        elif kind == "skew":  # one node's clock, or a whole host's (every node on it)
            for node_id in self._group(a["nodes"] if "nodes" in a else [a["node"]]):
                sim.nodes[node_id].offset_ms = a["offset_ms"]
                sim.note(f"skew {node_id} {a['offset_ms']} ms")
        elif kind in ("crash", "pause"):
            node = self._up(a["node"])
            if node is not None:
                sim.crash(node.id)
                self._down[node.id] = kind
        elif kind == "leave":
            node = self._up(a["node"])
            if node is not None and not node.protocol.membership.me.left:
                self._leave(node.id, partial(self._stop, node.id))
        elif kind == "restart":
            self.restart(self.current(a["node"]), a["mode"], a.get("offset_ms"), a.get("age"))
        elif kind == "recycle":
            self.recycle(a["node"], a.get("new_id"), a.get("how", "crash"), a.get("mode", "keep"))

    def _leave(self, node_id: str, then: Callable[[], None]) -> None:
        """A graceful stop: the goodbye, then (two rounds later) the process ends."""
        self.sim.leave(node_id)
        self._down[node_id] = "leave"
        self.sim.after(2 * self.sim.config.gossip_interval, then)

    def _stop(self, node_id: str) -> None:
        """A node that left stops (if it is still that life, and not recycled away)."""
        node = self.sim.nodes[node_id]
        if node.up and node.protocol.membership.me.left and node_id not in self.gone:
            self.sim.crash(node_id)
            if self.healed:  # it left as the faults ended: back at once, from its data
                self.restart(node_id, "keep")

    def restart(self, node_id: str, mode: str, offset_ms: int | None = None,
                age: float | None = None) -> None:
        """Start a stopped node again (a node up, or gone, stays as it is): in place
        (pause), from its latest snapshot (keep), an older one (stale: `age` seconds
        older than its latest, or any), or empty. With `offset_ms`, its clock is that far
        off as the new life starts."""
        sim, node = self.sim, self.sim.nodes[node_id]
        if node.up or node_id in self.gone:
            return
        if offset_ms is not None:
            node.offset_ms = offset_ms
            sim.note(f"skew {node_id} {offset_ms} ms (as it starts)")
        seeds = [i for i in self.ids if i != node_id]
        before = self._entries(node), self._held(node)
        saves = self.saves.get(node_id, [])
        if mode == "pause" and self._down.get(node_id) == "pause":
            sim.restart(node_id, keep_state=True)
        elif mode in ("keep", "stale", "pause") and saves:
            taken, snapshot = self._snapshot(saves, mode, age)
            self.restores.append((sim.now, node_id, taken, saves[-1][0]))
            sim.note(f"restore {node_id} from its snapshot of {taken:.3f} s (latest {saves[-1][0]:.3f} s)")
            sim.restart(node_id, keep_state=True, new_life=True, snapshot=snapshot, seeds=seeds)
            self.restored.add((node_id, node.protocol.membership.me.generation))
        else:
            sim.restart(node_id, keep_state=False, seeds=seeds)
        self._discarded(*before)
        self._started(node)

    def _snapshot(self, saves: list[Save], mode: str, age: float | None) -> Save:
        """The snapshot a restart restores: the latest, or (stale) one `age` seconds
        older than the latest (the oldest kept, if none is that old), or any older one."""
        if mode != "stale" or len(saves) == 1:
            return saves[-1]
        if age is None:
            return saves[self.sim.net.rng.randrange(len(saves) - 1)]
        older = [save for save in saves if save[0] <= saves[-1][0] - age]
        return older[-1] if older else saves[0]

    def recycle(self, slot: str, new_id: str | None, how: str, mode: str) -> None:
        """The worker in `slot` ends (killed, or a graceful stop) and another starts at
        once: with `new_id`, a new worker on a new port (a new, empty node; the old one
        is gone for good); else the same node again from its data directory (keep) or
        empty, a new life."""
        sim, old = self.sim, self.current(slot)
        node = sim.nodes[old]
        if new_id is None:
            if not node.up:
                self.restart(old, mode)
            elif how == "leave" and not node.protocol.membership.me.left:
                self._leave(old, partial(self._recycled, old, mode))
            else:
                sim.crash(old)
                self.restart(old, mode)
            return
        if new_id in sim.nodes:  # (a schedule edited by hand)
            return
        self.gone.add(old)
        self._down.pop(old, None)
        if node.up and how == "leave" and not node.protocol.membership.me.left:
            self._leave(old, partial(self._gone, old))
        else:
            self._gone(old)
        self._slot[slot] = new_id
        sim.add_node(new_id, seeds=[i for i in self.ids if i != old])
        self._started(sim.nodes[new_id])

    def _recycled(self, node_id: str, mode: str) -> None:
        """A recycled worker's graceful stop is over: it starts again."""
        node = self.sim.nodes[node_id]
        if node.up and node.protocol.membership.me.left:
            self.sim.crash(node_id)
            self.restart(node_id, mode)

    def _gone(self, node_id: str) -> None:
        """A recycled worker's process ended for good: what it alone held is lost."""
        node = self.sim.nodes[node_id]
        if node.up:
            self.sim.crash(node_id)
        self._dropped(node)

    def _save_all(self) -> None:
        for node in self.sim.up_nodes():
            history = self.saves.setdefault(node.id, [])
            history.append((self.sim.now, self.sim.save(node.id)))
            del history[: -int(MAX_DURATION / SAVE_EVERY)]
        self.sim.after(SAVE_EVERY, self._save_all)

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> None:
        s, sim = self.schedule, self.sim
        for i in range(s.nodes):
            sim.add_node(f"n{i}", seeds=[] if i == 0 else ["n0"])
        for step in s.steps:
            sim.at(to_us(step.at), lambda step=step: self.apply(step))  # type: ignore[misc]
        sim.at(to_us(SAVE_EVERY), self._save_all)
        sim.run_until(s.heal_at)
        self.heal()
        agreed = self._agree(s.agree_within)
        self.figures_at_end(agreed)
        if agreed is None:
            hashes = {n.id: n.protocol.state_hash(sim.node_ms(n))[0][:8] for n in sim.up_nodes()}
            self.violate("no agreement", f"within {s.agree_within} s of the heal: {hashes}")
            return
        self.check_final()
        self.check_resets()

    def heal(self) -> None:
        sim = self.sim
        self.healed = True
        for name in [*sim.net.cuts, *sim.net.blocks]:
            sim.heal(name)
        sim.net.model = dataclasses.replace(sim.net.model, loss=0.0, duplicate=0.0)
        for node in sim.nodes.values():
            node.offset_ms = 0
        for node in list(sim.nodes.values()):
            if not node.up and node.id not in self.gone:
                self.restart(node.id, "pause" if self._down.get(node.id) == "pause" else "keep")
        sim.note("heal: every cut, loss and skew gone, every node up (but those recycled away)")

    def _agree(self, within: float) -> float | None:
        sim = self.sim
        start = sim.now
        while sim.now - start < within:
            if sim.converged():
                sim.run_for(SETTLE)
                if sim.converged():
                    return sim.now - start - SETTLE
            sim.run_for(0.5)
        return None

    def check_final(self) -> None:
        sim = self.sim
        node = sim.up_nodes()[0]
        now = sim.node_ms(node)
        keys = {op.key for op in self.ops}
        for key in sorted(keys):
            ops = [op for op in self.ops if op.key == key]
            safe = [op for i, op in enumerate(self.ops) if op.key == key and i not in self.losable]
            final = node.protocol.read(key, now)
            best = max(safe, key=lambda e: (e.ts, e.origin)) if safe else None
            if final is not None:
                if final not in ops:
                    self.violate("unknown value", f"{key} reads {_show(final)}, never acknowledged")
                elif best is not None and best.wins_over(final):
                    what = "deleted key back" if not best.is_live(now) else "acknowledged write lost"
                    self.violate(what, f"{key} reads {_show(final)}; {_show(best)} was acknowledged")
            elif best is not None and best.is_live(now):
                removed = any(op == best or op.wins_over(best) for op in ops if not op.is_live(now))
                # A TTL write some node's clock saw expire (a clock ahead, put right since)
                # read as absent there and may have been collected (R7, R7e).
                expired = best.expires_at is not None and best.expires_at <= self.clock_high
                if not (removed or expired):
                    self.violate("acknowledged write lost", f"{key} is absent; {_show(best)} acknowledged")

    def check_resets(self) -> None:
        """Only a life some node forgot, or one whose state came from a snapshot (its own,
        or that of the node it caught up from), or one that caught up from such a life,
        may be reset (contract, 3); never one merely skewed, paused, cut off or restarted
        empty."""
        excused = self.reaped | self.restored
        while True:  # a life that caught up from an excused one, or renamed it, shares its state and fate
            more = {life for links in (self.sources, self.renamed) for life, source in links.items()
                    if source in excused} - excused
            if not more:
                break
            excused |= more
        uncaused = [life for life in self.reset_lives if life not in excused]
        if uncaused:
            shown = "; ".join(f"{n}#{g} ({self.reset_why.get((n, g), '?')})" for n, g in uncaused[:3])
            self.violate("reset without cause", f"{len(uncaused)} resets of lives neither forgotten nor "
                         f"restored from a snapshot: {shown}")
        resets, causes = len(self.reset_lives), len(self.reaped) + len(self.restored)
        if resets > 2 * len(self.sim.nodes) * max(1, causes):
            self.violate("reset storm", f"{resets} resets for {causes} causes")

    def figures_at_end(self, agreed: float | None) -> None:
        nodes = self.sim.nodes.values()
        self.figures = {
            "ops": len(self.ops), "losable": len(self.losable),
            "resets": sum(n.protocol.stats.resets for n in nodes),
            "collected": sum(n.protocol.stats.collected for n in nodes),
            "retired": sum(n.protocol.stats.retired for n in nodes),
            "forgotten lives": len(self.reaped), "restarts": len(self.lives), "restores": len(self.restored),
            "skewed starts": sum(1 for _, _, offset in self.lives if offset),
            "nodes (max)": len(self.sim.nodes),
            "agreed after s": -1.0 if agreed is None else round(agreed, 3),
            "digest writers (max)": max(len(n.protocol.store.watermarks) for n in nodes),
        }


def _show(e: Entry) -> str:
    what = "delete" if e.deleted else f"={e.value!r}"
    ttl = "" if e.expires_at is None else f" expires {e.expires_at}"
    return f"{e.key}{what} @{e.ts.wall}.{e.ts.counter} by {e.origin}{ttl}"


def run(schedule: Schedule, trace: bool = False) -> Outcome:
    r = Run(schedule, trace=trace)
    try:
        r.run()
    except Exception as exc:  # anything but a peer's error (the engine catches those) is a bug
        r.violate("exception", "".join(traceback.format_exception_only(exc)).strip())
        r.sim.note(traceback.format_exc())
    return Outcome(schedule, r.violations, getattr(r, "figures", {}), list(r.sim.trace))


def check(seed: int) -> Outcome:
    return run(generate(seed))


# -- shrinking ------------------------------------------------------------------------------


def shrink(
    outcome: Outcome,
    budget: int = 300,
    progress: Callable[[int, int], None] | None = None,
    kind: str | None = None,
) -> Outcome:
    """Remove steps while a violation of the same kind (`kind`, or the first one's)
    remains (delta debugging: halves, then quarters, ... then single steps)."""
    kind = kind or outcome.violations[0].kind
    best = outcome
    runs = 0
    chunk = max(1, len(best.schedule.steps) // 2)
    while chunk >= 1 and runs < budget:
        i, shrunk = 0, False
        while i < len(best.schedule.steps) and runs < budget:
            candidate = best.schedule.without(set(range(i, i + chunk)))
            runs += 1
            result = run(candidate)
            if any(v.kind == kind for v in result.violations):
                best, shrunk = result, True
                if progress is not None:
                    progress(runs, len(best.schedule.steps))
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return best


def seeds(spec: str) -> Iterable[int]:
    """'0-999' or '3,7,12'."""
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)
