"""A randomized checker of the core under faults, in virtual time.

From a seed it draws a cluster (2 to 6 nodes, or 7 to 10 in a quarter of the seeds;
member views of 2 to 4 records in about a third, so that each message carries a small
sample of the membership; short grace and reap periods so that long absences fit in a
quick run), a stream of writes, TTL writes, windowed-counter slots (which are collected
without the grace) and deletes on a few keys, and a schedule of faults:

- partitions, one-way cuts, message loss, duplication and reordering (the latency tail);
- crashes with restarts from the latest data-dir snapshot, from an old one or empty,
  pauses, graceful leaves, and clocks set off within and beyond `max_offset`;
- lives born under a skewed clock: a node killed and started again (from its data or
  empty) with its clock off, within or beyond `max_offset`, then again once it is right;
- a host's clock off: two or more nodes with the same offset, which agree with each other
  while the rest refuse them, sometimes rebooted under it and again once it is right;
- several nodes killed together and restored together from snapshots older than their
  latest, possibly older than collections and retirements the cluster made meanwhile;
- workers recycled over and over (each restart a new life, some under a new node id, the
  old id leaving or killed for good) while another member is down, paused or cut off;

each absence shorter than the grace period, past it, past `reap_after` (the node is
forgotten) or past twice that (the run is lengthened to hold it). Then it heals
everything and checks what docs/PROTOCOL.md promises:

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
import json
import random
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
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

Save = tuple[float, bytes]  # (virtual seconds, a data-dir snapshot taken then)


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

FAULTS = ("partition", "oneway", "loss", "crash", "pause", "leave", "skew")  # of the network or one process
# Faults of whole lives and hosts: a life born under a skewed clock, a host's clock off,
# several nodes restored together from stale snapshots, workers recycled while a member
# is away.
LIFE_FAULTS = ("skewed-life", "host-skew", "stale-group", "recycle")
SKEWS = (-8000, -3000, 3000, 8000)  # ms; max_offset is 5 s
LIFE_SKEWS = (-20000, -8000, -3000, -1000, 1000, 3000, 8000, 20000)  # within and beyond max_offset
MAX_DURATION = 150.0  # virtual seconds of faults, at most (a long absence lengthens a run)
MAX_RECYCLES = 40  # worker restarts in one recycling fault


def detection(nodes: int, fanout: int, view_size: int, interval: float) -> float:
    """About how long a crash takes to be seen (R17): 18 times the interval at which a
    member's heartbeat is expected, one round with whole views, more with small ones
    (20 of them, for a margin), and never more than 30 s, so that runs stay short."""
    rounds = 1.0 if nodes <= view_size else max(1.0, (nodes - 1) / (fanout * (view_size - 1)))
    return min(30.0, 20 * interval * rounds)


def generate(seed: int) -> Schedule:
    rng = random.Random(f"check:{seed}")
    nodes = rng.randint(2, 6) if rng.random() < 0.75 else rng.randint(7, 10)
    interval = 0.25
    grace = rng.choice([2.0, 4.0, 8.0])
    reap = rng.choice([4.0, 8.0, 15.0])
    fanout = rng.choice([1, 2, 3])
    # Small member views: each message carries a sample of 2-4 records (R13).
    view_size = rng.choice([2, 3, 4]) if rng.random() < 0.35 else 48
    config = {
        "gossip_interval": interval, "fanout": fanout, "tombstone_grace": grace,
        "reap_after": reap, "eager_push": rng.random() < 0.7, "request_timeout": 0.5,
        "max_offset": 5.0, "view_size": view_size,
    }
    network = {
        "latency": rng.choice([0.001, 0.003]), "latency_tail": rng.choice([0.0, 0.002, 0.02]),
        "loss": rng.choice([0.0, 0.0, 0.02, 0.1]), "duplicate": rng.choice([0.0, 0.0, 0.05]),
    }
    duration = rng.uniform(20, 60)
    ids = [f"n{i}" for i in range(nodes)]
    detect = detection(nodes, fanout, view_size, interval)
    steps: list[Step] = []
    serial = dict.fromkeys(ids, 0)  # new ids drawn per worker slot
    longest = 0.0  # the end of the longest absence: the run lasts past it

    # An absence is short (below grace), past grace, past reap_after plus the time a
    # crash takes to be seen (then the node is forgotten), or past twice that.
    def absence(start: float) -> float:
        nonlocal longest
        kind = rng.choice(["short", "short", "grace", "grace", "forgotten", "forgotten", "twice"])
        if kind == "short":
            return rng.uniform(0.2, grace)
        if kind == "grace":
            return rng.uniform(grace, grace + reap)
        if kind == "forgotten":
            return rng.uniform(reap + detect + 2, reap + detect + 20)
        length = rng.uniform(2 * reap + detect + 2, 2 * reap + detect + 15)
        longest = max(longest, start + length)
        return length

    def away(node: str, start: float, end: float, name: str, modes: tuple[str, ...]) -> None:
        """`node` is down or cut off from `start` to `end`, in one of `modes`."""
        how = rng.choice(modes)
        if how == "crash":
            mode = rng.choice(["keep", "keep", "stale", "empty"])
            steps.extend([Step(start, "crash", {"node": node}),
                          Step(end, "restart", {"node": node, "mode": mode})])
        elif how == "pause":
            steps.extend([Step(start, "pause", {"node": node}),
                          Step(end, "restart", {"node": node, "mode": "pause"})])
        else:
            steps.extend([Step(start, "cut", {"name": name, "group": [node]}),
                          Step(end, "heal", {"name": name})])

    def lives(at: float, group: list[str], offset_ms: int, modes: tuple[str, ...]) -> float:
        """Each node of `group` is killed at `at` and starts again a moment later (when
        it returns), its clock `offset_ms` off, from its data or empty."""
        back = at + rng.uniform(0.05, 2.0)
        for node in group:
            mode = rng.choice(modes)
            again = {"node": node, "mode": mode, "offset_ms": offset_ms}
            steps.extend([Step(at, "crash", {"node": node}), Step(back, "restart", again)])
        return back

    for n in range(rng.randint(1, 5)):
        start = rng.uniform(1.5, duration)
        name = f"f{n}"
        kind = rng.choice(FAULTS + LIFE_FAULTS)
        length = absence(start)
        end = start + length
        node = rng.choice(ids)
        if kind == "partition" and nodes > 1:
            group = rng.sample(ids, rng.randint(1, nodes - 1))
            steps += [Step(start, "cut", {"name": name, "group": group}), Step(end, "heal", {"name": name})]
        elif kind == "oneway" and nodes > 1:
            src = rng.sample(ids, rng.randint(1, nodes - 1))
            dst = [i for i in ids if i not in src]
            steps += [Step(start, "block", {"name": name, "src": src, "dst": dst}),
                      Step(end, "heal", {"name": name})]
        elif kind == "loss":
            p = rng.choice([0.2, 0.5, 0.9])
            steps += [Step(start, "loss", {"p": p}), Step(end, "loss", {"p": network["loss"]})]
        elif kind in ("crash", "leave"):
            mode = rng.choice(["keep", "keep", "stale", "empty"])
            steps += [Step(start, kind, {"node": node}), Step(end, "restart", {"node": node, "mode": mode})]
        elif kind == "pause":
            steps += [Step(start, "pause", {"node": node}),
                      Step(end, "restart", {"node": node, "mode": "pause"})]
        elif kind == "skew":
            offset = rng.choice(SKEWS)
            steps += [Step(start, "skew", {"node": node, "offset_ms": offset}),
                      Step(end, "skew", {"node": node, "offset_ms": 0})]
        elif kind == "skewed-life":  # born under a bad clock, then restarted once it is right
            end = lives(start, [node], rng.choice(LIFE_SKEWS), ("keep", "keep", "stale", "empty")) + length
            if rng.random() < 0.3:  # the clock is put right under the running life first
                steps.append(Step(end, "skew", {"node": node, "offset_ms": 0}))
                end += rng.uniform(0.2, 5.0)
            lives(end, [node], 0, ("keep", "empty"))
        elif kind == "host-skew":  # nodes on one host share its clock: they agree, the rest refuse them
            host = sorted(rng.sample(ids, rng.randint(2, max(2, nodes - 1))))
            offset = rng.choice(LIFE_SKEWS)
            steps.append(Step(start, "skew", {"nodes": host, "offset_ms": offset}))
            if rng.random() < 0.5:  # the host reboots with its clock off
                end = max(end, lives(rng.uniform(start, end), host, offset, ("keep", "keep", "empty")) + 0.1)
            steps.append(Step(end, "skew", {"nodes": host, "offset_ms": 0}))
            if rng.random() < 0.5:  # and again once it is right
                lives(end + rng.uniform(0.1, 3.0), host, 0, ("keep", "keep", "empty"))
        elif kind == "stale-group":  # killed together, restored together from old snapshots
            group = sorted(rng.sample(ids, rng.randint(2, min(nodes, 4))))
            age = rng.choice([rng.uniform(0.5, grace), rng.uniform(grace, grace + reap),
                              rng.uniform(reap, 2 * reap + detect)])
            for member in group:
                steps.append(Step(start + rng.uniform(0.0, 1.0), "crash", {"node": member}))
                back = {"node": member, "mode": "stale", "age": round(age, 3)}
                steps.append(Step(end + 1.0, "restart", back))
        elif kind == "recycle":  # workers restarted over and over while a member is away
            away(node, start, end, name, ("crash", "pause", "cut"))
            others = [i for i in ids if i != node]
            slots = rng.sample(others, min(len(others), rng.choice([1, 1, 2])))
            gap = rng.choice([0.3, 1.0, 3.0])
            t = start + rng.uniform(0.1, 1.0)
            for _ in range(MAX_RECYCLES):
                if t >= end:
                    break
                slot = rng.choice(slots)
                args: dict[str, Any] = {"node": slot, "how": rng.choice(["crash", "leave"])}
                if rng.random() < 0.5:  # a new port: a new node id
                    serial[slot] += 1
                    args["new_id"] = f"{slot}.{serial[slot]}"
                else:  # the same port and data directory
                    args["mode"] = rng.choice(["keep", "keep", "empty"])
                steps.append(Step(t, "recycle", args))
                t += 0.05 + rng.expovariate(1 / gap)
    duration = min(MAX_DURATION, max(duration, longest + rng.uniform(1.0, 5.0)))
    value = 0
    t = 1.5  # the cluster forms first
    while t < duration:
        t += rng.expovariate(rng.choice([1.0, 3.0]))
        node, key = rng.choice(ids), rng.choice(KEYS)
        roll = rng.random()
        value += 1
        if roll < 0.5:
            steps.append(Step(t, "write", {"node": node, "key": key, "value": value}))
        elif roll < 0.6:  # a windowed counter's slot (R22), collected without the grace (R7e)
            steps.append(Step(t, "window", {"node": node, "key": key, "value": value}))
        elif roll < 0.75:
            ttl = rng.choice([0.5, 2.0, 10.0])
            steps.append(Step(t, "write", {"node": node, "key": key, "value": value, "ttl": ttl}))
        else:
            steps.append(Step(t, "delete", {"node": node, "key": key}))
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
