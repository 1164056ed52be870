"""A node's CPU time in the simulator: off unless a CpuModel with cores is given, and
then only the timing of the work below changes, never what the core does.

A real node does its work on one event loop, one piece at a time, and the nodes on one
machine share its cores; on a busy machine a message waits for the work its receiver
took on before it, and its answer leaves when the handling ends, so a push's round trip
grows with its batch and with the queue in front of it. The model: every node has a
queue; each piece of its work starts when its earlier work is done and takes its cost in
CPU seconds, stretched by busy / cores while `busy` nodes (itself included) have work,
more of them than there are cores (processor sharing: the cores are shared evenly among
the nodes with work, as the OS shares them among runnable processes, in the limit of
short time slices). What the piece does happens when it ends. The pieces and costs:

- serving a push of k entries: per_message + per_entry * k; the core handles it, and its
  answer leaves, when that ends;
- serving an exchange whose delta holds k entries: per_message + per_summary +
  per_delta_entry * k (a summary's digest, view and reply are more work than a push,
  and an entry of a delta less than a pushed one, which is checked and passed on);
- sending a message: per_send / 2 before it leaves, and per_send / 2 to read its answer,
  plus per_summary + per_delta_entry * k for a reply whose delta holds k entries;
- a client's write (POST /set): per_write; it is applied and answered when that ends.

Direct probes (R23) are not charged. scripts/cpu_costs.py measures the costs on a real
machine.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields

from gossip.messages import Message, Reply, Rumor, Summary
from simulations.timeline import US, Timeline


@dataclass(frozen=True)
class CpuModel:
    per_message: float = 0.0  # seconds of CPU to serve a request (HTTP, signature, a push's handling)
    per_entry: float = 0.0  # and per entry of a push (decode, apply, relay)
    per_summary: float = 0.0  # more to serve an exchange, or to read a reply (digest, view)
    per_delta_entry: float = 0.0  # per entry of an exchange's or a reply's delta
    per_send: float = 0.0  # to send a message and read its answer (half each)
    per_write: float = 0.0  # to take a client's write
    cores: float = 0.0  # the machine's, shared by every node; 0: CPU time is not modelled

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"cpu field {f.name!r} must be >= 0")

    @property
    def on(self) -> bool:
        return self.cores > 0

    def serve(self, message: Message) -> float:
        """Serving a request: handling it and making the answer."""
        if isinstance(message, Rumor):
            return self.per_message + self.per_entry * sum(len(group.items) for group in message.groups)
        return self.per_message + self._summary(message)

    def answer(self, reply: Reply | None) -> float:
        """Reading the answer to a message sent (None: a push's, with nothing in it)."""
        return self.per_send / 2 + (0.0 if reply is None else self._summary(reply))

    def _summary(self, summary: Summary) -> float:
        return self.per_summary + self.per_delta_entry * sum(len(d.entries) for d in summary.delta)


class Cpus:
    """Every node's queue of work, and the cores shared among the nodes with work
    (processor sharing: each gets min(1, cores / busy) of a core)."""

    def __init__(self, model: CpuModel, timeline: Timeline) -> None:
        self.model, self.timeline = model, timeline
        self.queues: dict[str, deque[_Piece]] = {}  # address -> its work, the head running
        self.used: dict[str, float] = {}  # address -> CPU seconds of work it has done
        self._updated = 0  # virtual us up to which the heads' progress is counted
        self._version = 0  # of the one pending completion event; older ones are void

    @property
    def on(self) -> bool:
        return self.model.on

    def run(self, address: str, cost: float, action: Callable[[], None]) -> None:
        """Do `action` once the node at `address` has spent `cost` CPU seconds on it
        after its earlier work; at once when the CPU is not modelled."""
        if not self.model.on:
            action()
            return
        self._advance()
        self.queues.setdefault(address, deque()).append(_Piece(cost, cost, action))
        self._schedule()

    def forget(self, address: str) -> None:
        """The node stopped: its queued work ends at once (what each piece does checks
        that the node is up, so a request it held is refused, as by a dead process)."""
        if self.model.on and self.queues.get(address):
            self._advance()
            for piece in self.queues[address]:
                piece.cost, piece.left = piece.cost - max(0.0, piece.left), 0.0  # what it did
            self._schedule()

    def _share(self) -> float:
        """The part of a core each busy node gets now."""
        busy = sum(1 for queue in self.queues.values() if queue)
        return min(1.0, self.model.cores / busy) if busy else 1.0

    def _advance(self) -> None:
        now = self.timeline.now_us
        if now > self._updated:
            done = (now - self._updated) / US * self._share()
            for queue in self.queues.values():
                if queue:
                    queue[0].left -= done
        self._updated = now

    def _schedule(self) -> None:
        """The next completion, at the current shares (any change reschedules it)."""
        self._version += 1
        left = [queue[0].left for queue in self.queues.values() if queue]
        if left:
            version, share = self._version, self._share()
            # (the first whole us by which it is done, give or take a rounding error)
            when = self.timeline.now_us + max(0, math.ceil(min(left) / share * US - 1e-6))
            self.timeline.at(when, lambda: self._complete(version))

    def _complete(self, version: int) -> None:
        if version != self._version:
            return
        self._advance()
        within = self._share() / US  # less than a us of work left: done
        done = [(a, q.popleft()) for a, q in self.queues.items() if q and q[0].left <= within]
        for address, piece in done:
            self.used[address] = self.used.get(address, 0.0) + piece.cost - max(0.0, piece.left)
        self._schedule()
        for _, piece in done:
            piece.action()


@dataclass
class _Piece:
    cost: float  # CPU seconds
    left: float  # still to do
    action: Callable[[], None]
