"""The steps of a fault schedule (simulations/check_schedule.py) played on a simulation:
clients' writes, deletes and windowed-counter slots; cuts, one-way cuts, loss and skewed
clocks; processes killed, paused or stopped gracefully and started again (in place, from
their data directory's latest snapshot or an older one, or empty); workers recycled under
their id or a new one. Each change to what a node holds is told to the ledger
(simulations/check_ledger.py), so that it knows what the contract lets go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from functools import partial

from gossip.counters import window_expiry, window_of, window_slot
from simulations.check_ledger import Ledger
from simulations.check_schedule import Step
from simulations.engine import Simulation
from simulations.simnode import SimNode

WINDOW_MS = 2000  # the windowed counters' window

Save = tuple[float, bytes]  # (virtual seconds, a data-dir snapshot taken then)


class StepPlayer:
    """Plays steps on `sim`, telling `ledger`.

    A step names a node by its worker slot (n0, n1, ...): once a slot's worker was
    recycled under a new id, its steps go to that id. A node recycled away is gone: it
    never comes back, and what it alone held may be lost."""

    def __init__(self, sim: Simulation, ledger: Ledger) -> None:
        self.sim = sim
        self.ledger = ledger
        self.saves: dict[str, list[Save]] = {}  # each node's data-dir snapshots, oldest first
        self.stopped: dict[str, str] = {}  # how each stopped node stopped: crash, pause or leave
        self.healed = False
        self._slot: dict[str, str] = {}  # worker slot -> its current node id, once recycled

    @property
    def ids(self) -> list[str]:
        return [i for i in self.sim.nodes if i not in self.ledger.gone]

    def current(self, slot: str) -> str:
        return self._slot.get(slot, slot)

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
            self.ledger.track(slot)
            self.ledger.acknowledge(sim.write(node.id, slot, a["value"], ttl))
        elif kind in ("write", "delete"):
            node = self._up(a["node"])
            if node is None or node.protocol.membership.me.left:
                return
            if kind == "write":
                entry = sim.write(node.id, a["key"], a["value"], a.get("ttl"))
            else:
                entry = sim.delete(node.id, a["key"])
            self.ledger.acknowledge(entry)
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
                self.stopped[node.id] = kind
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
        self.stopped[node_id] = "leave"
        self.sim.after(2 * self.sim.config.gossip_interval, then)

    def _stop(self, node_id: str) -> None:
        """A node that left stops (if it is still that life, and not recycled away)."""
        node = self.sim.nodes[node_id]
        if node.up and node.protocol.membership.me.left and node_id not in self.ledger.gone:
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
        if node.up or node_id in self.ledger.gone:
            return
        if offset_ms is not None:
            node.offset_ms = offset_ms
            sim.note(f"skew {node_id} {offset_ms} ms (as it starts)")
        seeds = [i for i in self.ids if i != node_id]
        before = self.ledger.entries(node), self.ledger.held(node)
        saves = self.saves.get(node_id, [])
        if mode == "pause" and self.stopped.get(node_id) == "pause":
            sim.restart(node_id, keep_state=True)
        elif mode in ("keep", "stale", "pause") and saves:
            taken, snapshot = self._snapshot(saves, mode, age)
            sim.note(f"restore {node_id} from its snapshot of {taken:.3f} s (latest {saves[-1][0]:.3f} s)")
            sim.restart(node_id, keep_state=True, new_life=True, snapshot=snapshot, seeds=seeds)
            self.ledger.restore(node, taken, saves[-1][0])
        else:
            sim.restart(node_id, keep_state=False, seeds=seeds)
        self.ledger.discarded(*before)
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

    def _started(self, node: SimNode) -> None:
        self.stopped.pop(node.id, None)
        self.ledger.started(node)

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
        self.ledger.gone.add(old)
        self.stopped.pop(old, None)
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
        self.ledger.dropped(node)

    def save_all(self, keep: int) -> None:
        """Every node up saves a snapshot, as its data directory would; the `keep` latest
        of each are kept."""
        for node in self.sim.up_nodes():
            history = self.saves.setdefault(node.id, [])
            history.append((self.sim.now, self.sim.save(node.id)))
            del history[:-keep]

    def heal(self) -> None:
        """The faults end: every cut, loss and skew gone, every node up (but those
        recycled away)."""
        sim = self.sim
        self.healed = True
        for name in [*sim.net.cuts, *sim.net.blocks]:
            sim.heal(name)
        sim.net.model = dataclasses.replace(sim.net.model, loss=0.0, duplicate=0.0)
        for node in sim.nodes.values():
            node.offset_ms = 0
        for node in list(sim.nodes.values()):
            if not node.up and node.id not in self.ledger.gone:
                self.restart(node.id, "pause" if self.stopped.get(node.id) == "pause" else "keep")
        sim.note("heal: every cut, loss and skew gone, every node up (but those recycled away)")
