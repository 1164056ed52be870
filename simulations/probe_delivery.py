"""Direct probes (R23) in the simulator: each node's probes ticked when they are due, and
their one-way messages carried through the real Codec and the modelled network (lost,
delayed, cut; a receiver's `slow` seconds added, as an overloaded node handles them late).
The engine (simulations/engine.py) starts a node's probes with each life."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gossip.codec import Codec
from gossip.errors import PeerError
from gossip.probe_messages import ProbeOut
from simulations.delivery import Traffic
from simulations.network import Network
from simulations.simnode import SimNode
from simulations.timeline import Timeline


class ProbeDelivery:
    """Ticks the nodes' probes and carries their messages on `timeline`, by `route`
    (simulations/delivery.py's); `node_ms` reads a node's clock, `changed` is told of a node
    whose probes may have changed its view, `note` traces."""

    def __init__(self, timeline: Timeline, net: Network, codec: Codec,
                 route: Callable[[SimNode, str], SimNode | None], *,
                 node_ms: Callable[[SimNode], int], changed: Callable[[SimNode], None],
                 note: Callable[[str], None], traffic: Traffic) -> None:
        self.timeline, self.net, self.codec = timeline, net, codec
        self.route = route  # the destination if a message gets through the network, else None
        self.node_ms, self.changed, self.note, self.traffic = node_ms, changed, note, traffic

    def schedule(self, node: SimNode) -> None:
        """A tick of the node's probes when they next have something to do (sooner than
        the one scheduled, if any)."""
        probes = node.protocol.probes
        if probes is None or not node.up:
            return
        now = self.timeline.now_us
        when = max(now, now + (probes.next_due() - self.node_ms(node)) * 1000)
        if node.probe_at is not None and now <= node.probe_at <= when:
            return
        node.probe_at = when
        life = node.incarnation
        self.timeline.at(when, lambda: self._tick(node, life, when))

    def _tick(self, node: SimNode, life: int, when: int) -> None:
        if not node.up or node.incarnation != life or node.probe_at != when:
            return  # another life's, or one rescheduled sooner
        node.probe_at = None
        probes = node.protocol.probes
        if probes is None:
            return
        for out in probes.tick(self.node_ms(node)):
            self._send(node, out)
        self.changed(node)
        self.schedule(node)

    def _send(self, src: SimNode, out: ProbeOut) -> None:
        """A one-way probe message: it arrives after the network's delay (plus the
        receiver's slowness), or is lost."""
        data = self.codec.encode_probe(out.message)
        self.traffic.count("probe", len(data))
        dst = self.route(src, out.address)
        if dst is not None:
            self.timeline.after(self.net.delay() + dst.slow, partial(self._deliver, dst, data))

    def _deliver(self, dst: SimNode, data: bytes) -> None:
        probes = dst.protocol.probes
        if not dst.up or probes is None:
            return
        try:
            message = self.codec.decode_probe(data)
        except PeerError as exc:
            self.traffic.rejected += 1
            self.note(f"{dst.id} rejected a probe: {exc}")
            return
        for out in probes.handle(message, self.node_ms(dst)):
            self._send(dst, out)
        self.changed(dst)
        self.schedule(dst)
