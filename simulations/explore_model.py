"""The world that simulations/explore.py searches exhaustively: three real GossipProtocol
nodes, the exchanges and replies in flight between them (bytes of the real Codec), time
in coarse ticks, crashes, pauses and restarts (empty, from the latest snapshot, from an
older one), a partition, and the fault checker's bookkeeping of what docs/PROTOCOL.md
("What can be lost, and when") lets the cluster lose (simulations/check_ledger.py), with
its step player (check_steps.py) and its verdict (check_verdict.py).

An event is a tuple of strings, so that a path of events is readable, fits in JSON and
replays from the initial world: ("write", node, key), ("delete", node, key), ("round",
node[, "noreply", peer]), ("deliver" | "drop", "exchange" | "reply", sender, receiver[,
"old"]), ("tick",), ("crash" | "pause", node), ("restart", node, "keep" | "stale" | "empty"
| "pause"), ("cut", node), ("heal",). Which of them exist depends on the grain (Bounds):
with "message", a round only sends, and each exchange and reply arrives (in any order)
as an event of its own, or times out at the next tick; with "round", a round and its
messages are one event (all delivered, or one reply lost); with "tick", a tick also runs
a round of every node up, all delivered. Each node runs at most one round a tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gossip.config import Config
from gossip.errors import PeerError
from gossip.messages import Reply
from simulations.check_ledger import Ledger
from simulations.check_schedule import Step
from simulations.check_steps import StepPlayer
from simulations.check_verdict import judge_reads, judge_resets
from simulations.engine import Simulation

IDS = ("n0", "n1", "n2")
TICK_MS = 1000  # one step of time: one gossip interval
PRELOAD_KEY = "k0"

Event = tuple[str, ...]


@dataclass(frozen=True)
class Bounds:
    depth: int = 4  # events per history
    keys: int = 1  # keys written and deleted: k0, k1, ...
    ops: int = 2  # writes and deletes per history
    lives: int = 2  # lives per node: a crash (or a pause) and its restart start the next
    ticks: int = 4  # steps of time per history
    cuts: int = 0  # partitions (one node cut off, then healed) per history
    drops: bool = False  # a message may be lost at once (else only by not arriving before the tick)
    # What one event does: "message" (a round sends, each exchange and reply arrives as
    # an event of its own), "round" (a round and all its messages at once, or with one
    # reply lost) or "tick" (time moves, then every node up runs a round, all at once).
    grain: str = "message"
    pause: bool = True  # a node may pause and resume as the same life
    preload: bool = True  # k0 written on n0 and held by every node before the search
    settle_rounds: int = 12  # rounds of the heal-and-settle phase, one tick apart


def explore_config(**changes: Any) -> Config:
    """A Config under which the lifecycle rules act within a few ticks of one second:
    rounds reach both peers (fanout 2 of 3 nodes), no jitter, no eager push (the exchanges
    carry every write, which keeps the state space small), a dead member is always probed.
    A member silent for one tick turns suspect (phi 0.43 >= 0.4), for two ticks dead (phi
    0.87 >= 0.8), and is forgotten one tick later (reap_after 0.5 s); a tombstone is ripe
    one tick after the delete (tombstone_grace 0.5 s)."""
    base: dict[str, Any] = {
        "gossip_interval": 1.0, "jitter": 0.0, "fanout": 2, "eager_push": False,
        "dead_probe_chance": 1.0, "phi_suspect": 0.4, "phi_dead": 0.8,
        "tombstone_grace": 0.5, "reap_after": 0.5, "request_timeout": 0.5,
    }
    return Config(**{**base, **changes})


@dataclass(frozen=True)
class Flight:
    """A message on its way: an exchange (sender is the requester) or its reply
    (receiver is the requester). `life` is the requester's incarnation when it asked."""

    kind: str  # "exchange" or "reply"
    sender: str
    receiver: str
    life: int
    data: bytes

    @property
    def requester(self) -> str:
        return self.sender if self.kind == "exchange" else self.receiver


def _show(entry: Any) -> str:
    what = "deleted" if entry.deleted else f"={entry.value!r}"
    return f"{entry.key}{what}@{entry.ts.wall % 100_000}.{entry.ts.counter}/{entry.origin.split('#')[0]}"


class World:
    """The cluster under search: nodes, flights, time and the ledger. Copy it to branch
    (the search pickles it whole: RNGs, protocol objects and ledger together)."""

    def __init__(self, config: Config, bounds: Bounds) -> None:
        self.bounds = bounds
        self.sim = Simulation(config, seed="explore", synchronous=True)  # no timers: the search drives
        # The checker's bookkeeping, and its steps, over a world driven event by event
        # rather than by a schedule (nothing watches the simulation: the events do).
        self.ledger = Ledger(self.sim)
        self.player = StepPlayer(self.sim, self.ledger)
        self.flights: list[Flight] = []
        self.lives = dict.fromkeys(IDS, 1)
        self.ticks = self.ops = self.cuts = 0
        self.cut: str | None = None
        self.rounded: set[str] = set()  # nodes that started their round of this tick
        self.narrate: Callable[[str], None] | None = None  # told of each settle round, when replaying
        self._form()

    # -- the initial world --------------------------------------------------------------

    def _form(self) -> None:
        """n0 founds the cluster, n1 and n2 join through it; all meet, and with `preload`
        n0's write of k0 reaches everyone; then one tick, one more round each, and
        every node saves a snapshot."""
        self.sim.add_node("n0")
        for node_id in IDS[1:]:
            self.sim.add_node(node_id, seeds=["n0"])
        self._rounds_until_quiet(10, advance=False)
        if self.bounds.preload:
            self.player.apply(Step(0.0, "write", {"node": "n0", "key": PRELOAD_KEY, "value": 0}))
            self._rounds_until_quiet(10, advance=False)
        self._tick()
        self._rounds_until_quiet(1, advance=False)
        self.player.save_all(keep=2)
        self._watch_all()
        if not self.quiet():
            raise RuntimeError("the initial cluster did not form")

    # -- events ---------------------------------------------------------------------------

    def events(self) -> list[Event]:
        """Every event enabled now, in a fixed order."""
        b, nodes = self.bounds, self.sim.nodes
        up = [i for i in IDS if nodes[i].up]
        out: list[Event] = []
        if self.ops < b.ops:
            out += [(kind, i, f"k{k}") for i in up for k in range(b.keys) for kind in ("write", "delete")]
        if b.grain == "message":
            out += [("round", i) for i in up if i not in self.rounded]
        elif b.grain == "round":
            for i in up:
                if i not in self.rounded:
                    reachable = [o for o in up if o != i and self._linked(i, o)]
                    out += [("round", i), *(("round", i, "noreply", o) for o in reachable)]
        seen: set[Event] = set()
        for f in self.flights:
            ident = self._ident(f)
            if ident in seen:
                continue
            seen.add(ident)
            if self._deliverable(f):
                out.append(("deliver", *ident))
            if b.drops:
                out.append(("drop", *ident))
        if self.ticks < b.ticks:
            out.append(("tick",))
        for i in IDS:
            node = nodes[i]
            if node.up and self.lives[i] < b.lives:
                out += [("crash", i), *([("pause", i)] if b.pause else [])]
            elif not node.up:
                out += [("restart", i, mode) for mode in self._restart_modes(i)]
        if self.cut is None and self.cuts < b.cuts:
            out += [("cut", i) for i in IDS]
        elif self.cut is not None:
            out.append(("heal",))
        return out

    def apply(self, event: Event) -> None:
        kind, args = event[0], event[1:]
        if kind in ("write", "delete"):
            self.ops += 1
            value = len(self.ledger.ops)
            self.player.apply(Step(0.0, kind, {"node": args[0], "key": args[1], "value": value}))
        elif kind == "round":
            self.rounded.add(args[0])
            self._round(args[0])
            if self.bounds.grain == "round":
                self._drain(lost_reply=args[2] if args[1:] else None)
        elif kind in ("deliver", "drop"):
            flight = next(f for f in self.flights if self._ident(f) == args)
            self.flights.remove(flight)
            if kind == "deliver":
                self._deliver(flight)
            else:
                self._fail(flight)
        elif kind == "tick":
            self.ticks += 1
            self._tick()
            if self.bounds.grain == "tick":
                for node_id in IDS:
                    if self.sim.nodes[node_id].up:
                        self._round(node_id)
                        self._drain()
        elif kind in ("crash", "pause"):
            self.lives[args[0]] += 1
            self.player.apply(Step(0.0, kind, {"node": args[0]}))
        elif kind == "restart":
            self.rounded.discard(args[0])  # a new process: its first round comes when it will
            self.player.restart(args[0], args[1])
        elif kind == "cut":
            self.cuts += 1
            self.cut = args[0]
            self.sim.cut("cut", [args[0]])
        elif kind == "heal":
            self.cut = None
            self.sim.heal("cut")
        else:
            raise ValueError(f"unknown event {event!r}")
        # A reply whose requester has stopped since goes nowhere: no event for it.
        self.flights = [f for f in self.flights if f.kind == "exchange" or self._current(f)]
        self._watch_all()

    def _ident(self, f: Flight) -> Event:
        """How an event names a flight: kind and ends, and "old" if its requester has
        restarted (or paused) since it asked."""
        return (f.kind, f.sender, f.receiver, *(() if self._current(f) else ("old",)))

    def _current(self, f: Flight) -> bool:
        node = self.sim.nodes[f.requester]
        return node.up and node.incarnation == f.life

    def _linked(self, a: str, b: str) -> bool:
        return self.sim.net.connected(self._address(a), self._address(b))

    def _deliverable(self, f: Flight) -> bool:
        if not self._linked(f.sender, f.receiver):
            return False
        return self.sim.nodes[f.receiver].up if f.kind == "exchange" else self._current(f)

    def _restart_modes(self, node_id: str) -> list[str]:
        node = self.sim.nodes[node_id]
        if self.player.stopped.get(node_id) == "pause":
            return ["pause"]
        if self.sim.node_ms(node) <= node.protocol.membership.me.generation:
            return []  # a new life needs a new generation: the clock must have moved on
        saves = self.player.saves.get(node_id, [])
        stale = len(saves) > 1 and saves[0][1] != saves[-1][1]
        return ["keep", *(["stale"] if stale else []), "empty"]

    # -- what the events do ----------------------------------------------------------------

    @staticmethod
    def _address(node_id: str) -> str:
        return f"sim://{node_id}"

    def _now(self, node_id: str) -> int:
        return self.sim.node_ms(self.sim.nodes[node_id])

    def _round(self, node_id: str) -> None:
        node = self.sim.nodes[node_id]
        outgoing = node.protocol.round(self._now(node_id))
        self._watch(node_id)  # a round may forget a member that is back a moment later
        for out in outgoing:
            peer = out.address.removeprefix("sim://")
            if peer not in self.sim.nodes or not self.sim.net.connected(node.address, out.address):
                node.protocol.on_failure(out.address)  # across the cut: fails at once
                continue
            data = self.sim.codec.encode(out.message)
            self.flights.append(Flight("exchange", node_id, peer, node.incarnation, data))

    def _deliver(self, f: Flight) -> None:
        codec, receiver = self.sim.codec, self.sim.nodes[f.receiver]
        try:
            message = codec.decode(f.data)
            if isinstance(message, Reply):
                if self._current(f):
                    receiver.protocol.on_reply(self._address(f.sender), message, self._now(f.receiver))
                return
            reply = receiver.protocol.handle(message, self._now(f.receiver))
        except PeerError:
            self._fail(f)
            return
        if not isinstance(reply, Reply):
            self._fail(f)
        elif self._current(f):  # a reply to a requester gone since goes nowhere
            self.flights.append(Flight("reply", f.receiver, f.sender, f.life, codec.encode(reply)))

    def _fail(self, f: Flight) -> None:
        """The requester's exchange failed (lost either way, refused, or timed out)."""
        if self._current(f):
            other = f.receiver if f.kind == "exchange" else f.sender
            self.sim.nodes[f.requester].protocol.on_failure(self._address(other))

    def _tick(self) -> None:
        """Time moves on one interval: whatever is in flight has timed out, and every
        node up saves a snapshot (as --data-dir does every second)."""
        for f in self.flights:
            self._fail(f)
        self.flights = []
        self.rounded.clear()
        self.sim.now_us += TICK_MS * 1000
        self.player.save_all(keep=2)  # the latest, and one older for a stale restart

    def _drain(self, lost_reply: str | None = None) -> None:
        """Deliver what is in flight, and the replies it brings, in order, at once;
        the reply from `lost_reply` is lost."""
        while self.flights:
            flight = self.flights.pop(0)
            lost = flight.kind == "reply" and flight.sender == lost_reply
            if self._deliverable(flight) and not lost:
                self._deliver(flight)
            else:
                self._fail(flight)
            self._watch(flight.receiver)

    def _watch(self, node_id: str) -> None:
        node = self.sim.nodes[node_id]
        if node.up:
            self.ledger.watch(node)

    def _watch_all(self) -> None:
        for node in self.sim.up_nodes():
            self.ledger.watch(node)

    # -- heal and settle --------------------------------------------------------------------

    def quiet(self) -> bool:
        return (not self.flights and self.sim.converged()
                and not any(n.protocol.bootstrapping for n in self.sim.up_nodes()))

    def _rounds_until_quiet(self, rounds: int, advance: bool) -> bool:
        """Up to `rounds` rounds of every node up, each exchange and reply delivered at
        once; one tick after each round if `advance`. Whether the cluster is quiet."""
        for _ in range(rounds):
            for node_id in IDS:
                if self.sim.nodes[node_id].up:
                    self._round(node_id)
            self._drain()
            if self.narrate is not None:
                self.narrate("every node up runs a round, every message delivered")
            if self.quiet():
                return True
            if advance:
                self._tick()
        return self.quiet()

    def settle(self) -> None:
        """The end of a history: time moves on, every link heals and every node comes
        back (from its latest snapshot, or resumes), then rounds until the cluster is
        quiet; then the contract is checked. Violations land in the ledger."""
        self._tick()
        self.cut = None
        self.player.heal()
        self._watch_all()
        if self.narrate is not None:
            self.narrate("heal: a tick, every link up, every node back (latest snapshot, or resumes)")
        if not self._rounds_until_quiet(self.bounds.settle_rounds, advance=True):
            hashes = {n.id: n.protocol.state_hash(self.sim.node_ms(n))[0][:8] for n in self.sim.up_nodes()}
            booting = [n.id for n in self.sim.up_nodes() if n.protocol.bootstrapping]
            kind = "catch-up unfinished" if booting else "no agreement"
            rounds = self.bounds.settle_rounds
            self.ledger.violate(kind, f"after {rounds} rounds: {hashes}, catching up: {booting}")
            return
        judge_reads(self.ledger)
        judge_resets(self.ledger)
