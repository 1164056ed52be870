"""How a message travels in the simulator: an exchange and its reply, an eager push and
its end. Each goes through the real Codec (so sizes are real) and the modelled network
(simulations/network.py: lost, duplicated, delayed, cut); a failure reaches the core as
node/ sees one: a lost request or reply after `request_timeout`, a refused one (the
peer down) after a round trip, an answer slower than the timeout as a timeout. With the
CPU modelled (simulations/cpu.py), sending, serving and reading an answer each wait
their turn on the node's CPU and take their time. The engine (simulations/engine.py)
hands it what nodes send; it counts the traffic.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from gossip.codec import Codec
from gossip.errors import PeerError
from gossip.messages import Message, Outgoing, Reply
from simulations.cpu import Cpus
from simulations.network import Network
from simulations.simnode import SimNode
from simulations.timeline import Timeline, to_us

KINDS = ("exchange", "reply", "rumor")  # gossip's messages
TRAFFIC_KINDS = (*KINDS, "probe")  # and direct probes' (R23, simulations/probe_delivery.py)


@dataclass
class Traffic:
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRAFFIC_KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRAFFIC_KINDS, 0))
    # bytes of the largest message of each kind
    largest: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRAFFIC_KINDS, 0))
    lost: int = 0
    rejected: int = 0
    failures: int = 0
    pushes_ended: int = 0  # eager pushes answered or failed
    push_seconds: float = 0.0  # their total time from being taken to their end

    def count(self, kind: str, size: int) -> None:
        self.messages[kind] += 1
        self.bytes[kind] += size
        if size > self.largest[kind]:
            self.largest[kind] = size

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


class Delivery:
    """Carries the messages of the nodes in `nodes_at` (by address) on `timeline`.

    `node_ms` reads a node's clock; `changed` is told of a node that took a message (it
    may have learned something); `note` traces. With `synchronous`, requests that carry
    no news are answered first (see Simulation); without `pull`, replies carry no delta
    (push-only)."""

    def __init__(self, timeline: Timeline, net: Network, codec: Codec, nodes_at: dict[str, SimNode], *,
                 node_ms: Callable[[SimNode], int], changed: Callable[[SimNode], None],
                 note: Callable[[str], None], request_timeout: float, synchronous: bool, pull: bool,
                 traffic: Traffic, sent_to: Counter[str], cpus: Cpus) -> None:
        self.timeline = timeline
        self.net = net
        self.codec = codec
        self.nodes_at = nodes_at
        self.node_ms = node_ms
        self.changed = changed
        self.note = note
        self.request_timeout = request_timeout
        self.synchronous = synchronous
        self.pull = pull
        self.traffic = traffic
        self.sent_to = sent_to  # exchanges and rumors sent to each address
        self.cpus = cpus
        self._timeout_us = to_us(request_timeout)

    def route(self, src: SimNode, address: str, reply: bool = False) -> SimNode | None:
        """The destination if the message gets through the network, else None."""
        dst = self.nodes_at.get(address)
        if dst is None or not self.net.connected(src.address, address) or self.net.lost(reply):
            self.traffic.lost += 1
            return None
        return dst

    # -- exchanges --------------------------------------------------------------------------

    def send_exchange(self, src: SimNode, out: Outgoing) -> None:
        self._sending(src, partial(self._send_exchange, src, src.incarnation, out))

    def _send_exchange(self, src: SimNode, life: int, out: Outgoing) -> None:
        if src.incarnation != life:
            return  # stopped before it left
        data = self.codec.encode(out.message)
        self.traffic.count("exchange", len(data))
        self.sent_to[out.address] += 1
        sent = self.timeline.now_us
        self.note(f"{src.id} -> {out.address} exchange {len(data)}B")
        dst = self.route(src, out.address)
        if dst is None:
            self._fail_at(sent + self._timeout_us, src, life, out.address)
            return
        # Synchronous mode: requests without news are answered first (see the class doc).
        priority = 1 if self.synchronous and out.message.delta else 0  # type: ignore[union-attr]
        copies = 2 if self.net.duplicated() else 1
        for copy in range(copies):
            answer = copy == 0
            serve = partial(self._serve_exchange, src, life, dst, data, sent, answer)
            refused = partial(self._refused, src, life, dst, answer)
            self.timeline.after(
                self.net.delay() + dst.slow,  # an overloaded receiver handles it late
                partial(self._arrive, dst, out.message, serve, refused),
                priority,
            )

    def _refused(self, src: SimNode, life: int, dst: SimNode, answer: bool) -> None:
        """An exchange reached a node that is down: connection refused, noticed after a
        round trip."""
        if answer:
            self._fail_at(self.timeline.now_us + to_us(self.net.delay()), src, life, dst.address)

    def _serve_exchange(self, src: SimNode, life: int, dst: SimNode, data: bytes,
                        sent: int, answer: bool) -> None:
        if not dst.up:
            self._refused(src, life, dst, answer)
            return
        reply = self._handle(dst, data)
        if not answer:
            return  # a duplicated request: its answer goes nowhere
        if not isinstance(reply, Reply):
            self._fail_at(self.timeline.now_us + to_us(self.net.delay()), src, life, dst.address)
            return
        if not self.pull:
            reply = dataclasses.replace(reply, delta=())
        rdata = self.codec.encode(reply)
        self.traffic.count("reply", len(rdata))
        back = self.route(dst, src.address, reply=True)
        arrive = self.timeline.now_us + to_us(self.net.delay())
        if back is None or arrive - sent > self._timeout_us:
            self._fail_at(sent + self._timeout_us, src, life, dst.address)
            return
        read = partial(self._deliver_reply, src, life, dst.address, rdata)
        cost = self.cpus.model.answer(reply)
        self.timeline.at(arrive, partial(self.cpus.run, src.address, cost, read))

    def _deliver_reply(self, src: SimNode, life: int, address: str, data: bytes) -> None:
        if not src.up or src.incarnation != life:
            return
        try:
            src.protocol.on_reply(address, self._decode_reply(data), self.node_ms(src))
        except PeerError as exc:
            self.traffic.rejected += 1
            self.note(f"{src.id} rejected reply from {address}: {exc}")
            src.protocol.on_failure(address)
            return
        self.changed(src)

    def _handle(self, dst: SimNode, data: bytes) -> Reply | None:
        try:
            reply = dst.protocol.handle(self.codec.decode(data), self.node_ms(dst))
        except PeerError as exc:
            self.traffic.rejected += 1
            self.note(f"{dst.id} rejected a message: {exc}")
            return None
        self.changed(dst)
        return reply

    def _decode_reply(self, data: bytes) -> Reply:
        message = self.codec.decode(data)
        if not isinstance(message, Reply):
            raise TypeError(f"expected a reply, got {type(message).__name__}")
        return message

    def _fail_at(self, when: int, src: SimNode, life: int, address: str) -> None:
        def fail() -> None:
            if src.up and src.incarnation == life:
                self.traffic.failures += 1
                self.note(f"{src.id}: exchange with {address} failed")
                src.protocol.on_failure(address)

        self.timeline.at(when, fail)

    # -- eager pushes -----------------------------------------------------------------------

    def send_rumors(self, src: SimNode) -> None:
        """Pushes for the peers with none in flight, as node/ sends them (R21)."""
        for out in src.protocol.take_rumors():
            self._push(src, out)

    def _push(self, src: SimNode, out: Outgoing) -> None:
        """An eager push. It ends when its answer is back (a round trip), or fails (lost:
        after the request timeout; refused: after a round trip); the core is told
        (push_ended), as the node tells it, and what waits then leaves."""
        taken = self.timeline.now_us
        self._sending(src, partial(self._send_push, src, src.incarnation, out, taken))

    def _send_push(self, src: SimNode, life: int, out: Outgoing, taken: int) -> None:
        if src.incarnation != life:
            return  # stopped before it left (the crash forgot the pushes in flight)
        data = self.codec.encode(out.message)
        self.traffic.count("rumor", len(data))
        self.sent_to[out.address] += 1
        self.note(f"{src.id} -> {out.address} rumor {len(data)}B")
        sent = self.timeline.now_us
        dst = self.route(src, out.address)
        if dst is None:
            self.timeline.after(self.request_timeout, lambda: self._push_failed(src, life, out, taken))
            return
        for copy in range(2 if self.net.duplicated() else 1):
            answer = copy == 0
            serve = partial(self._serve_rumor, src, life, dst, data, out, (taken, sent), answer)
            refused = partial(self._rumor_refused, src, life, out, taken, answer)
            arrive = partial(self._arrive, dst, out.message, serve, refused)
            self.timeline.after(self.net.delay() + dst.slow, arrive)

    def _rumor_refused(self, src: SimNode, life: int, out: Outgoing, taken: int, answer: bool) -> None:
        if answer:
            self.timeline.after(self.net.delay(), lambda: self._push_failed(src, life, out, taken))

    def _serve_rumor(self, src: SimNode, life: int, dst: SimNode, data: bytes, out: Outgoing,
                     times: tuple[int, int], answer: bool) -> None:
        taken, sent = times
        if not dst.up:
            self._rumor_refused(src, life, out, taken, answer)
            return
        self._handle(dst, data)
        if not answer:
            return
        back = self.route(dst, src.address, reply=True)
        arrive = self.timeline.now_us + to_us(self.net.delay())
        if back is None or arrive - sent > self._timeout_us:
            self.timeline.at(sent + self._timeout_us, lambda: self._push_failed(src, life, out, taken))
        else:
            done = partial(self._push_done, src, life, out, taken)
            self.timeline.at(arrive, partial(self.cpus.run, src.address, self.cpus.model.answer(None), done))

    def _push_done(self, src: SimNode, life: int, out: Outgoing, taken: int) -> None:
        if src.incarnation != life:
            return
        self._push_ended(taken)
        src.protocol.push_ended(out, delivered=True)
        if src.up and src.protocol.has_rumors():
            self.send_rumors(src)

    def _push_failed(self, src: SimNode, life: int, out: Outgoing, taken: int) -> None:
        if not src.up or src.incarnation != life:
            return
        self._push_ended(taken)
        self.traffic.failures += 1
        src.protocol.push_ended(out, delivered=False)
        if src.protocol.has_rumors():
            self.send_rumors(src)

    def _push_ended(self, taken: int) -> None:
        self.traffic.pushes_ended += 1
        self.traffic.push_seconds += (self.timeline.now_us - taken) / 1e6

    # -- the nodes' CPU (simulations/cpu.py) --------------------------------------------------

    def _sending(self, src: SimNode, send: Callable[[], None]) -> None:
        """`send` once the sender has done its part of sending (at once, CPU not modelled)."""
        self.cpus.run(src.address, self.cpus.model.per_send / 2, send)

    def _arrive(self, dst: SimNode, message: Message, serve: Callable[[], None],
                refused: Callable[[], None]) -> None:
        """A request reaches `dst`: refused if it is down, else served in its turn."""
        if not dst.up:
            refused()
        else:
            self.cpus.run(dst.address, self.cpus.model.serve(message), serve)
