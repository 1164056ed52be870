"""A randomized checker of the core under faults, in virtual time.

From a seed it draws a cluster (2 to 6 nodes, short grace and reap periods so that long
absences fit in a quick run), a stream of writes, TTL writes, windowed-counter slots (which
are collected without the grace) and deletes on a few keys,
and a schedule of faults: partitions, one-way cuts, message loss, duplication and
reordering (the latency tail), crashes with restarts from the latest data-dir snapshot,
from an old one or empty, pauses, graceful leaves, and clocks set off within and beyond
`max_offset`. Then it heals everything and checks what docs/PROTOCOL.md promises:

- every live node agrees, within a bounded time;
- each key reads as the last-writer-wins maximum of the acknowledged operations on it,
  except operations the contract lets go (those only a discarded state held: a node
  restarted without its data, or from a snapshot older than the operation, or reset);
- no node ever reads an older entry for a key after holding a newer one (so no deleted
  key comes back), within one life of that node;
- no node resets unless a life was forgotten or a node came back from a snapshot;
- nothing raises but a peer's error.

A failing schedule shrinks (steps are removed while the same kind of violation stays)
and prints as JSON, which `gossip-sim check --replay FILE` runs again.
"""

from __future__ import annotations

import dataclasses
import json
import random
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gossip.config import Config
from gossip.counters import window_expiry, window_of, window_slot
from gossip.store import Entry
from simulations.engine import SimNode, Simulation, to_us
from simulations.network import NetworkModel

KEYS = ("k0", "k1", "k2", "k3", "k4")
WINDOW_MS = 2000  # the windowed counters' window
SAVE_EVERY = 1.0  # virtual seconds between data-dir snapshots, as node/ does
SETTLE = 2.0  # virtual seconds the agreement must hold


@dataclass(frozen=True)
class Step:
    at: float  # virtual seconds
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    seed: int
    nodes: int
    config: dict[str, Any]  # Config fields
    network: dict[str, Any]  # NetworkModel fields
    steps: tuple[Step, ...]
    heal_at: float  # every fault ends here; then the cluster must agree
    agree_within: float  # virtual seconds after heal_at

    def to_json(self) -> str:
        body = dataclasses.asdict(self)
        return json.dumps(body, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        body = json.loads(text)
        steps = tuple(Step(s["at"], s["kind"], s["args"]) for s in body.pop("steps"))
        return cls(steps=steps, **body)

    def without(self, drop: set[int]) -> Schedule:
        return dataclasses.replace(self, steps=tuple(s for i, s in enumerate(self.steps) if i not in drop))


# -- drawing a schedule ------------------------------------------------------------------


def generate(seed: int) -> Schedule:
    rng = random.Random(f"check:{seed}")
    nodes = rng.randint(2, 6)
    interval = 0.25
    grace = rng.choice([2.0, 4.0, 8.0])
    reap = rng.choice([4.0, 8.0, 15.0])
    config = {
        "gossip_interval": interval, "fanout": rng.choice([1, 2, 3]), "tombstone_grace": grace,
        "reap_after": reap, "eager_push": rng.random() < 0.7, "request_timeout": 0.5,
        "max_offset": 5.0,
    }  # fmt: skip
    network = {
        "latency": rng.choice([0.001, 0.003]), "latency_tail": rng.choice([0.0, 0.002, 0.02]),
        "loss": rng.choice([0.0, 0.0, 0.02, 0.1]), "duplicate": rng.choice([0.0, 0.0, 0.05]),
    }  # fmt: skip
    duration = rng.uniform(20, 60)
    ids = [f"n{i}" for i in range(nodes)]
    steps: list[Step] = []
    value = 0
    t = 1.5  # the cluster forms first
    while t < duration:
        t += rng.expovariate(rng.choice([1.0, 3.0]))
        node, key = rng.choice(ids), rng.choice(KEYS)
        roll = rng.random()
        value += 1
        if roll < 0.5:
            steps.append(Step(round(t, 3), "write", {"node": node, "key": key, "value": value}))
        elif roll < 0.6:  # a windowed counter's slot (R22), collected without the grace (R7e)
            steps.append(Step(round(t, 3), "window", {"node": node, "key": key, "value": value}))
        elif roll < 0.75:
            ttl = rng.choice([0.5, 2.0, 10.0])
            steps.append(Step(round(t, 3), "write", {"node": node, "key": key, "value": value, "ttl": ttl}))
        else:
            steps.append(Step(round(t, 3), "delete", {"node": node, "key": key}))
    # An absence is short (below grace), past grace, or past reap_after plus the time a
    # crash takes to be seen (about 18 intervals): then the node is forgotten.
    detect = 20 * interval

    def absence() -> float:
        kind = rng.choice(["short", "grace", "forgotten"])
        if kind == "short":
            return rng.uniform(0.2, grace)
        if kind == "grace":
            return rng.uniform(grace, grace + reap)
        return rng.uniform(reap + detect + 2, reap + detect + 20)

    for n in range(rng.randint(1, 5)):
        start = rng.uniform(1.5, duration)
        end = start + absence()
        name = f"f{n}"
        kind = rng.choice(["partition", "oneway", "loss", "crash", "pause", "leave", "skew"])
        node = rng.choice(ids)
        if kind == "partition" and nodes > 1:
            group = rng.sample(ids, rng.randint(1, nodes - 1))
            steps += [Step(start, "cut", {"name": name, "group": group}), Step(end, "heal", {"name": name})]
        elif kind == "oneway" and nodes > 1:
            src = rng.sample(ids, rng.randint(1, nodes - 1))
            dst = [i for i in ids if i not in src]
            steps += [Step(start, "block", {"name": name, "src": src, "dst": dst}),
                      Step(end, "heal", {"name": name})]  # fmt: skip
        elif kind == "loss":
            p = rng.choice([0.2, 0.5, 0.9])
            steps += [Step(start, "loss", {"p": p}), Step(end, "loss", {"p": network["loss"]})]
        elif kind in ("crash", "leave"):
            mode = rng.choice(["keep", "keep", "stale", "empty"])
            steps += [Step(start, kind, {"node": node}), Step(end, "restart", {"node": node, "mode": mode})]
        elif kind == "pause":
            steps += [Step(start, "pause", {"node": node}),
                      Step(end, "restart", {"node": node, "mode": "pause"})]  # fmt: skip
        else:
            offset = rng.choice([-8000, -3000, 3000, 8000])  # max_offset is 5 s
            steps += [Step(start, "skew", {"node": node, "offset_ms": offset}),
                      Step(end, "skew", {"node": node, "offset_ms": 0})]  # fmt: skip
    steps = [dataclasses.replace(s, at=round(s.at, 3)) for s in steps if s.at < duration]
    steps.sort(key=lambda s: s.at)
    agree_within = reap + detect + 60
    return Schedule(seed, nodes, config, network, tuple(steps), round(duration, 3), agree_within)


# -- running it ------------------------------------------------------------------------


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
    and what each node life has held."""

    def __init__(self, schedule: Schedule, trace: bool = False) -> None:
        self.schedule = schedule
        config = Config(**schedule.config)
        self.sim = Simulation(config, NetworkModel(**schedule.network), schedule.seed, trace=trace)
        self.ops: list[Entry] = []
        self.losable: set[int] = set()  # indexes into ops
        self.saves: dict[str, list[tuple[float, bytes]]] = {}
        self.restore_kinds: set[str] = set()
        self.reaped: set[tuple[str, int]] = set()  # lives some node forgot
        self.violations: list[Violation] = []
        self._shadow: dict[str, dict[str, Entry | None]] = {}
        self._resets: dict[str, int] = {}
        self._seen: dict[tuple[str, int], dict[str, Entry]] = {}  # (node, generation) -> newest per key
        self._down: dict[str, str] = {}  # how each stopped node stopped: crash, pause or leave
        self.healed = False
        self._keys: list[str] = list(KEYS)  # and the windowed-counter slots written so far
        self.sim.watchers.append(self._watch)

    @property
    def ids(self) -> list[str]:
        return list(self.sim.nodes)

    # -- the contract's bookkeeping ---------------------------------------------------

    def _entries(self, node: SimNode) -> dict[str, Entry | None]:
        store = node.protocol.store
        return {key: store.get(key) for key in self._keys}

    def _discarded(self, before: dict[str, Entry | None]) -> None:
        """A node's state `before` was just dropped: operations it alone held (or beat)
        may be lost now."""
        for i, op in enumerate(self.ops):
            if i in self.losable or not _holds(before.get(op.key), op):
                continue
            if not any(_holds(n.protocol.store.get(op.key), op) for n in self.sim.nodes.values()):
                self.losable.add(i)

    def _watch(self, node: SimNode) -> None:
        p = node.protocol
        discards = p.counters.resets + p.counters.dropped_unvouched
        if discards != self._resets.get(node.id, 0):  # part of its state dropped: may read older now
            self._resets[node.id] = discards
            self._discarded(self._shadow.get(node.id, {}))
            self._seen.pop((node.id, p.membership.me.generation), None)
        for member_id, forgotten in p.forgotten.items():
            self.reaped.add((member_id, forgotten.generation))
        life = (node.id, p.membership.me.generation)
        seen = self._seen.setdefault(life, {})
        current = self._entries(node)
        for key, entry in current.items():
            if entry is None:
                continue
            newest = seen.get(key)
            if newest is not None and newest.wins_over(entry):
                self.violate("went back", f"{node.id} held {_show(newest)} for {key}, now {_show(entry)}")
            if newest is None or entry.wins_over(newest):
                seen[key] = entry
        self._shadow[node.id] = current

    def violate(self, kind: str, detail: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(Violation(kind, detail))
        self.sim.note(f"VIOLATION {kind}: {detail}")

    # -- steps ------------------------------------------------------------------------------

    def _up(self, node_id: str) -> SimNode | None:
        node = self.sim.nodes.get(node_id)
        return node if node is not None and node.up else None

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
            sim.cut(a["name"], a["group"])
        elif kind == "block":
            sim.block(a["name"], a["src"], a["dst"])
        elif kind == "heal":
            sim.heal(a["name"])
        elif kind == "loss":
            sim.net.model = dataclasses.replace(sim.net.model, loss=a["p"])
            sim.note(f"loss {a['p']}")
        elif kind == "skew":
            sim.nodes[a["node"]].offset_ms = a["offset_ms"]
            sim.note(f"skew {a['node']} {a['offset_ms']} ms")
        elif kind in ("crash", "pause"):
            if self._up(a["node"]) is not None:
                sim.crash(a["node"])
                self._down[a["node"]] = kind
        elif kind == "leave":
            node = self._up(a["node"])
            if node is not None and not node.protocol.membership.me.left:
                sim.leave(node.id)
                self._down[node.id] = "leave"
                sim.after(2 * sim.config.gossip_interval, lambda: self._stop(node.id))
        elif kind == "restart":
            self.restart(a["node"], a["mode"])

    def _stop(self, node_id: str) -> None:
        if self._up(node_id) is not None:
            self.sim.crash(node_id)
            if self.healed:  # it left as the faults ended: back at once, from its data
                self.restart(node_id, "keep")

    def restart(self, node_id: str, mode: str) -> None:
        sim, node = self.sim, self.sim.nodes[node_id]
        if node.up:
            return
        seeds = [i for i in self.ids if i != node_id]
        before = self._entries(node)
        saves = self.saves.get(node_id, [])
        if mode == "pause" and self._down.get(node_id) == "pause":
            sim.restart(node_id, keep_state=True)
        elif mode in ("keep", "stale", "pause") and saves:
            if mode == "stale" and len(saves) > 1:
                _, snapshot = saves[sim.net.rng.randrange(len(saves) - 1)]
            else:
                _, snapshot = saves[-1]
            self.restore_kinds.add(mode)
            sim.restart(node_id, keep_state=True, new_life=True, snapshot=snapshot, seeds=seeds)
        else:
            sim.restart(node_id, keep_state=False, seeds=seeds)
        self._discarded(before)
        self._shadow[node_id] = self._entries(node)
        self._resets[node_id] = node.protocol.counters.resets + node.protocol.counters.dropped_unvouched

    def _save_all(self) -> None:
        for node in self.sim.up_nodes():
            history = self.saves.setdefault(node.id, [])
            history.append((self.sim.now, self.sim.save(node.id)))
            del history[:-40]
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
            if not node.up:
                self.restart(node.id, "pause" if self._down.get(node.id) == "pause" else "keep")
        sim.note("heal: every cut, loss and skew gone, every node up")

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
                if not removed:
                    self.violate("acknowledged write lost", f"{key} is absent; {_show(best)} acknowledged")

    def check_resets(self) -> None:
        resets = sum(n.protocol.counters.resets for n in self.sim.nodes.values())
        causes = len(self.reaped) + len(self.restore_kinds)
        if resets and not causes:
            self.violate("reset without cause", f"{resets} resets; no life forgotten, no snapshot restored")
        if resets > 2 * self.schedule.nodes * max(1, causes):
            self.violate("reset storm", f"{resets} resets for {causes} causes")

    def figures_at_end(self, agreed: float | None) -> None:
        nodes = self.sim.nodes.values()
        self.figures = {
            "ops": len(self.ops), "losable": len(self.losable),
            "resets": sum(n.protocol.counters.resets for n in nodes),
            "collected": sum(n.protocol.counters.collected for n in nodes),
            "retired": sum(n.protocol.counters.retired for n in nodes),
            "forgotten lives": len(self.reaped),
            "agreed after s": -1.0 if agreed is None else round(agreed, 3),
            "digest writers (max)": max(len(n.protocol.store.watermarks) for n in nodes),
        }  # fmt: skip


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
    outcome: Outcome, budget: int = 300, progress: Callable[[int, int], None] | None = None
) -> Outcome:
    """Remove steps while a violation of the same kind remains (delta debugging: halves,
    then quarters, ... then single steps)."""
    kind = outcome.violations[0].kind
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
